package amqp

import (
	"encoding/binary"
	"time"
)

// ContentHeader is a content header frame's payload.
type ContentHeader struct {
	ClassID    uint16
	Weight     uint16
	BodySize   uint64
	Properties Properties
}

// Decode decodes a content header payload into h, reusing it.
func (h *ContentHeader) Decode(payload []byte) error {
	if len(payload) < 14 {
		return Errorf(FrameError, "content header of %d bytes is too short", len(payload))
	}
	h.ClassID = binary.BigEndian.Uint16(payload)
	h.Weight = binary.BigEndian.Uint16(payload[2:])
	h.BodySize = binary.BigEndian.Uint64(payload[4:])
	_, err := h.Properties.Decode(payload[12:])
	return err
}

// Append appends the property flags and the present properties.
func (p *Properties) Append(buf []byte) []byte {
	at := len(buf)
	buf = append(buf, 0, 0)
	var flags uint16
	str := func(f uint16, s string) {
		if s != "" {
			flags |= f
			buf = appendShortstr(buf, s)
		}
	}
	str(FlagContentType, p.ContentType)
	str(FlagContentEncoding, p.ContentEncoding)
	if p.Headers != nil {
		flags |= FlagHeaders
		buf = AppendTable(buf, p.Headers)
	}
	if p.DeliveryMode != 0 {
		flags |= FlagDeliveryMode
		buf = append(buf, p.DeliveryMode)
	}
	if p.Priority != 0 {
		flags |= FlagPriority
		buf = append(buf, p.Priority)
	}
	str(FlagCorrelationID, p.CorrelationID)
	str(FlagReplyTo, p.ReplyTo)
	str(FlagExpiration, p.Expiration)
	str(FlagMessageID, p.MessageID)
	if !p.Timestamp.IsZero() {
		flags |= FlagTimestamp
		buf = binary.BigEndian.AppendUint64(buf, uint64(p.Timestamp.Unix()))
	}
	str(FlagType, p.Type)
	str(FlagUserID, p.UserID)
	str(FlagAppID, p.AppID)
	str(FlagClusterID, p.ClusterID)
	binary.BigEndian.PutUint16(buf[at:], flags)
	return buf
}

// Decode decodes property flags and properties from b into p (replacing
// what p held) and returns the bytes consumed.
func (p *Properties) Decode(b []byte) (int, error) {
	*p = Properties{}
	r := argReader{b: b}
	flags := r.readShort()
	for more := flags&1 != 0; more && r.err == nil; {
		more = r.readShort()&1 != 0 // continuation words carry no properties we know
	}
	if flags&FlagContentType != 0 {
		p.ContentType = r.readShortstr()
	}
	if flags&FlagContentEncoding != 0 {
		p.ContentEncoding = r.readShortstr()
	}
	if flags&FlagHeaders != 0 {
		p.Headers = r.readTable()
	}
	if flags&FlagDeliveryMode != 0 {
		p.DeliveryMode = r.readOctet()
	}
	if flags&FlagPriority != 0 {
		p.Priority = r.readOctet()
	}
	if flags&FlagCorrelationID != 0 {
		p.CorrelationID = r.readShortstr()
	}
	if flags&FlagReplyTo != 0 {
		p.ReplyTo = r.readShortstr()
	}
	if flags&FlagExpiration != 0 {
		p.Expiration = r.readShortstr()
	}
	if flags&FlagMessageID != 0 {
		p.MessageID = r.readShortstr()
	}
	if flags&FlagTimestamp != 0 {
		p.Timestamp = time.Unix(int64(r.readLonglong()), 0).UTC()
	}
	if flags&FlagType != 0 {
		p.Type = r.readShortstr()
	}
	if flags&FlagUserID != 0 {
		p.UserID = r.readShortstr()
	}
	if flags&FlagAppID != 0 {
		p.AppID = r.readShortstr()
	}
	if flags&FlagClusterID != 0 {
		p.ClusterID = r.readShortstr()
	}
	return r.off, r.err
}
