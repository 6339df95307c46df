package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/queue"
)

// The queue link's frames (link.go): each is a 4-byte big-endian length
// and a body whose first byte is its kind. Integers are uvarints, strings
// and messages a uvarint length and their bytes (a message in the
// store's encoding, queue.Message.AppendBinary).
//
// Requests carry a request id; the receiver answers each with a reply
// frame of that id (a publish with id 0 wants none):
//
//	publish  id vhost queue message            reply: result byte (queue.PublishResult)
//	consume  id consumer vhost queue flags priority(varint) credit
//	get      id vhost queue noAck              reply: found; found: delivery redelivered remaining message; else remaining
//	purge    id vhost queue                    reply: count
//	info     id vhost queue touch              reply: ready unacked consumers readyBytes pagedOut policy
//
// Other frames need no answer:
//
//	hello      node                    first frame each way: the sender's node name
//	reply      id status [payload]     status 0 ok (then the payload), 1 an *amqp.Error
//	                                   (code class method text), 2 another error (text)
//	cancel     consumer                the consuming node cancels a consumer
//	credit     consumer n              it may take n more deliveries
//	settle     how count delivery…     ack (0), requeue (1) or reject (2) deliveries
//	deliver    consumer delivery redelivered message   (delivery 0: no-ack)
//	cancelled  consumer                the home node dropped a consumer (queue deleted)
const (
	frameHello     byte = 1
	frameReply     byte = 2
	framePublish   byte = 3
	frameConsume   byte = 4
	frameCancel    byte = 5
	frameCredit    byte = 6
	frameSettle    byte = 7
	frameDeliver   byte = 8
	frameCancelled byte = 9
	frameGet       byte = 10
	framePurge     byte = 11
	frameInfo      byte = 12
)

// Reply statuses of a link reply.
const (
	linkOK       byte = 0
	linkAMQPErr  byte = 1
	linkOtherErr byte = 2
)

// Consume flags.
const (
	consumeNoAck     byte = 1
	consumeExclusive byte = 2
)

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendFlag(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendLinkError appends a reply's status and error.
func appendLinkError(b []byte, err error) []byte {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		b = append(b, linkAMQPErr)
		b = binary.BigEndian.AppendUint16(b, ae.Code)
		b = binary.BigEndian.AppendUint16(b, ae.ClassID)
		b = binary.BigEndian.AppendUint16(b, ae.MethodID)
		return appendString(b, ae.Text)
	}
	return appendString(append(b, linkOtherErr), err.Error())
}

// errMalformed reports a frame that does not decode.
var errMalformed = errors.New("malformed queue link frame")

// frameReader decodes a frame body; the first error sticks and later
// reads return zero values.
type frameReader struct {
	b   []byte
	err error
}

func (r *frameReader) fail() {
	if r.err == nil {
		r.err = errMalformed
	}
	r.b = nil
}

func (r *frameReader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *frameReader) flag() bool { return r.byte() != 0 }

func (r *frameReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *frameReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *frameReader) uint16() uint16 {
	if len(r.b) < 2 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

// bytes returns the next length-prefixed bytes, aliasing the frame.
func (r *frameReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *frameReader) string() string { return string(r.bytes()) }

// status reads a reply's status; for an error status it returns the error.
func (r *frameReader) status() error {
	switch r.byte() {
	case linkOK:
		return nil
	case linkAMQPErr:
		ae := &amqp.Error{Code: r.uint16(), ClassID: r.uint16(), MethodID: r.uint16()}
		ae.Text = r.string()
		if r.err != nil {
			return r.err
		}
		return ae
	case linkOtherErr:
		text := r.string()
		if r.err != nil {
			return r.err
		}
		return errors.New(text)
	}
	r.fail()
	return r.err
}

// done returns the decoding error, also for bytes left over.
func (r *frameReader) done() error {
	if r.err == nil && len(r.b) > 0 {
		return fmt.Errorf("%w: %d bytes left over", errMalformed, len(r.b))
	}
	return r.err
}

// smallMessage is a message decoded from a link frame together with the
// bytes it aliases: one allocation for a small message.
type smallMessage struct {
	m   queue.Message
	buf [smallMessageBytes]byte
}

// smallMessageBytes is the largest encoded message a smallMessage holds.
const smallMessageBytes = 112

// decodeMessage decodes a message from a frame (whose buffer is reused)
// into memory of its own: the message, its strings and its body share one
// allocation for a small message, two otherwise.
func decodeMessage(data []byte) (*queue.Message, error) {
	if len(data) <= smallMessageBytes {
		return (&smallMessage{}).decode(data)
	}
	m := &queue.Message{}
	if err := queue.UnmarshalMessageShared(append([]byte(nil), data...), m); err != nil {
		return nil, err
	}
	return m, nil
}

// decode decodes data (at most smallMessageBytes) into sm.
func (sm *smallMessage) decode(data []byte) (*queue.Message, error) {
	n := copy(sm.buf[:], data)
	if err := queue.UnmarshalMessageShared(sm.buf[:n:n], &sm.m); err != nil {
		return nil, err
	}
	return &sm.m, nil
}

// nameCache keeps the last vhost and queue name a link's reader decoded,
// so that a stream of frames for one queue does not copy them each time.
// Only the reader goroutine uses it.
type nameCache struct {
	vhost, name string
}

// names reads a vhost and a queue name.
func (c *nameCache) names(fr *frameReader) (vhost, name string) {
	v, n := fr.bytes(), fr.bytes()
	if string(v) != c.vhost {
		c.vhost = string(v)
	}
	if string(n) != c.name {
		c.name = string(n)
	}
	return c.vhost, c.name
}
