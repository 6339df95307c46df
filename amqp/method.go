package amqp

import "encoding/binary"

// Method is an AMQP method: one generated struct per method of the spec.
type Method interface {
	ClassID() uint16
	MethodID() uint16
	// Name is the spec's name, e.g. "basic.publish".
	Name() string
	// HasContent reports whether content (header and body frames) follows.
	HasContent() bool
	// Synchronous reports whether the method expects a reply.
	Synchronous() bool
	// AppendArgs appends the encoded arguments (not the ids) to buf.
	AppendArgs(buf []byte) []byte
	// DecodeArgs decodes the arguments that follow the ids.
	DecodeArgs(b []byte) error
}

// AppendMethod appends the class id, method id and arguments of m.
func AppendMethod(buf []byte, m Method) []byte {
	buf = binary.BigEndian.AppendUint16(buf, m.ClassID())
	buf = binary.BigEndian.AppendUint16(buf, m.MethodID())
	return m.AppendArgs(buf)
}

// DecodeMethod decodes a method frame's payload into a new method struct.
func DecodeMethod(payload []byte) (Method, error) {
	if len(payload) < 4 {
		return nil, Errorf(SyntaxError, "method frame of %d bytes is too short", len(payload))
	}
	classID := binary.BigEndian.Uint16(payload)
	methodID := binary.BigEndian.Uint16(payload[2:])
	m := newMethod(classID, methodID)
	if m == nil {
		return nil, Errorf(CommandInvalid, "unknown method %d.%d", classID, methodID)
	}
	if err := m.DecodeArgs(payload[4:]); err != nil {
		return nil, err
	}
	return m, nil
}

// MethodDecoder decodes method payloads like DecodeMethod, but reuses one
// value per type for the hot methods basic.publish, basic.ack, basic.nack and
// basic.reject (the returned Method is valid until the next Decode), and
// reuses the previous exchange and routing-key strings when their bytes are
// equal, so a stream of publishes decodes without allocating.
type MethodDecoder struct {
	publish BasicPublish
	ack     BasicAck
	nack    BasicNack
	reject  BasicReject
}

// Decode decodes one method payload.
func (d *MethodDecoder) Decode(payload []byte) (Method, error) {
	if len(payload) < 4 {
		return nil, Errorf(SyntaxError, "method frame of %d bytes is too short", len(payload))
	}
	classID := binary.BigEndian.Uint16(payload)
	methodID := binary.BigEndian.Uint16(payload[2:])
	if classID != ClassBasic {
		return DecodeMethod(payload)
	}
	args := payload[4:]
	switch methodID {
	case 40:
		return &d.publish, d.decodePublish(args)
	case 80:
		return &d.ack, d.ack.DecodeArgs(args)
	case 120:
		return &d.nack, d.nack.DecodeArgs(args)
	case 90:
		return &d.reject, d.reject.DecodeArgs(args)
	}
	return DecodeMethod(payload)
}

func (d *MethodDecoder) decodePublish(b []byte) error {
	r := argReader{b: b}
	m := &d.publish
	m.Reserved1 = r.readShort()
	m.Exchange = reuse(m.Exchange, r.shortstrBytes())
	m.RoutingKey = reuse(m.RoutingKey, r.shortstrBytes())
	bits := r.readOctet()
	m.Mandatory = bits&1 != 0
	m.Immediate = bits&2 != 0
	return r.err
}

// reuse returns prev when it equals b, else a new string of b.
func reuse(prev string, b []byte) string {
	if prev == string(b) { // the comparison does not allocate
		return prev
	}
	return string(b)
}
