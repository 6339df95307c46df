package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// messageFormatV1 is the leading byte of the store encoding written by this
// version. The layout after it is:
//
//	uvarint ID, str Exchange, str RoutingKey,
//	uvarint property flags (amqp.Flag* bits), then each present property in
//	flag order (strings as str, Headers as a table, DeliveryMode and Priority
//	as one byte, Timestamp as varint Unix seconds + uvarint nanoseconds),
//	str Body
//
// where str is a uvarint length followed by the bytes. Tables are encoded by
// appendTable.
const messageFormatV1 = 1

// errTruncated reports input that ends in the middle of a value.
var errTruncated = errors.New("truncated input")

// MarshalBinary encodes the message for the store.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, m.encodedSizeHint()))
}

// AppendBinary appends the store encoding of the message to buf.
func (m *Message) AppendBinary(buf []byte) ([]byte, error) {
	buf = append(buf, messageFormatV1)
	buf = appendUvarint(buf, m.ID)
	buf = appendString(buf, m.Exchange)
	buf = appendString(buf, m.RoutingKey)
	buf, err := appendProperties(buf, &m.Properties)
	if err != nil {
		return nil, fmt.Errorf("encode message %d: %w", m.ID, err)
	}
	buf = appendUvarint(buf, uint64(len(m.Body)))
	return append(buf, m.Body...), nil
}

// encodedSizeHint is a cheap upper-bound guess of the encoded size without
// headers, so that most messages are encoded with one allocation.
func (m *Message) encodedSizeHint() int {
	p := &m.Properties
	n := 1 + 10*4 + len(m.Exchange) + len(m.RoutingKey) + len(m.Body) + 64
	n += len(p.ContentType) + len(p.ContentEncoding) + len(p.CorrelationID) + len(p.ReplyTo) +
		len(p.Expiration) + len(p.MessageID) + len(p.Type) + len(p.UserID) + len(p.AppID) + len(p.ClusterID)
	return n + 32*len(p.Headers)
}

// UnmarshalMessage decodes a message encoded by MarshalBinary. It never
// panics; malformed input returns an error. The result does not share
// memory with b.
func UnmarshalMessage(b []byte) (*Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode message: %w", errTruncated)
	}
	if b[0] != messageFormatV1 {
		return nil, fmt.Errorf("decode message: unknown format version %d", b[0])
	}
	m := &Message{}
	if err := unmarshalMessage(b, m, false); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalMessageShared decodes a message in the store encoding into m
// without copying: m's strings and body alias b, which the caller hands
// over (nothing may change b while m is in use); so may the strings of
// header tables.
func UnmarshalMessageShared(b []byte, m *Message) error {
	if len(b) == 0 {
		return fmt.Errorf("decode message: %w", errTruncated)
	}
	if b[0] != messageFormatV1 {
		return fmt.Errorf("decode message: unknown format version %d", b[0])
	}
	return unmarshalMessage(b, m, true)
}

func unmarshalMessage(b []byte, m *Message, shared bool) error {
	d := decoder{b: b[1:], shared: shared}
	m.ID = d.uvarint()
	m.Exchange = d.string()
	m.RoutingKey = d.string()
	d.properties(&m.Properties)
	m.Body = d.bytes()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decode message: %w", d.err)
	}
	return nil
}

// propertyStrings lists the string properties with their flags, in flag
// order, for the encoder and decoder to share.
func propertyStrings(p *amqp.Properties) [10]struct {
	flag uint16
	s    *string
} {
	return [10]struct {
		flag uint16
		s    *string
	}{
		{amqp.FlagContentType, &p.ContentType},
		{amqp.FlagContentEncoding, &p.ContentEncoding},
		{amqp.FlagCorrelationID, &p.CorrelationID},
		{amqp.FlagReplyTo, &p.ReplyTo},
		{amqp.FlagExpiration, &p.Expiration},
		{amqp.FlagMessageID, &p.MessageID},
		{amqp.FlagType, &p.Type},
		{amqp.FlagUserID, &p.UserID},
		{amqp.FlagAppID, &p.AppID},
		{amqp.FlagClusterID, &p.ClusterID},
	}
}

func appendProperties(buf []byte, p *amqp.Properties) ([]byte, error) {
	var flags uint16
	strs := propertyStrings(p)
	for _, s := range strs {
		if *s.s != "" {
			flags |= s.flag
		}
	}
	if p.Headers != nil {
		flags |= amqp.FlagHeaders
	}
	if p.DeliveryMode != 0 {
		flags |= amqp.FlagDeliveryMode
	}
	if p.Priority != 0 {
		flags |= amqp.FlagPriority
	}
	if !p.Timestamp.IsZero() {
		flags |= amqp.FlagTimestamp
	}
	buf = appendUvarint(buf, uint64(flags))
	// Fixed order: strings, headers, delivery mode, priority, timestamp.
	for _, s := range strs {
		if flags&s.flag != 0 {
			buf = appendString(buf, *s.s)
		}
	}
	if flags&amqp.FlagHeaders != 0 {
		var err error
		if buf, err = appendTable(buf, p.Headers, 0); err != nil {
			return nil, fmt.Errorf("headers: %w", err)
		}
	}
	if flags&amqp.FlagDeliveryMode != 0 {
		buf = append(buf, p.DeliveryMode)
	}
	if flags&amqp.FlagPriority != 0 {
		buf = append(buf, p.Priority)
	}
	if flags&amqp.FlagTimestamp != 0 {
		buf = appendTime(buf, p.Timestamp)
	}
	return buf, nil
}

func (d *decoder) properties(p *amqp.Properties) {
	flags := d.uvarint()
	if d.err != nil {
		return
	}
	if flags > 0xffff {
		d.fail(fmt.Errorf("invalid property flags %#x", flags))
		return
	}
	for _, s := range propertyStrings(p) {
		if uint16(flags)&s.flag != 0 {
			*s.s = d.string()
		}
	}
	if uint16(flags)&amqp.FlagHeaders != 0 {
		p.Headers = d.table(0)
	}
	if uint16(flags)&amqp.FlagDeliveryMode != 0 {
		p.DeliveryMode = d.byte()
	}
	if uint16(flags)&amqp.FlagPriority != 0 {
		p.Priority = d.byte()
	}
	if uint16(flags)&amqp.FlagTimestamp != 0 {
		p.Timestamp = d.time()
	}
}

func appendTime(buf []byte, t time.Time) []byte {
	buf = appendVarint(buf, t.Unix())
	return appendUvarint(buf, uint64(t.Nanosecond()))
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail(fmt.Errorf("invalid timestamp nanoseconds %d", nsec))
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
