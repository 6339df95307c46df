package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// Warren's inter-node requests, on connections whose first byte is
// streamWarren. Each request and each reply is a frame: a 4-byte
// big-endian length, then the body. A request body is its kind and its
// payload; a connection carries requests one after another.
//
// A reply is a status byte, then a uvarint index, then the result error
// (the op's check error for a proposal):
//
//	0                           no error
//	1 code class method text    an *amqp.Error (uint16s, then a uvarint-length string)
//	2 text                      any other error
//
// A reply that carries data (rpcQuery's) ends with it, uvarint-length
// prefixed; replies without data end after the error.
const (
	rpcPropose   byte = 1  // payload: an op (meta.AppendOp); reply: its index and check error
	rpcReadIndex byte = 2  // reply: the index a caught-up node has applied
	rpcForget    byte = 3  // payload: a node name
	rpcQuery     byte = 64 // payload: a peer query (query.go), answered by any node; reply: data
)

// Reply statuses.
const (
	statusOK        byte = 0
	statusNotLeader byte = 1 // the receiver does not lead: try the leader (nothing was done)
	statusFailed    byte = 2 // the request failed: the error says why
)

// maxFrame bounds a frame (a definitions import is one op).
const maxFrame = 256 << 20

// rpcTimeout bounds the write of a reply.
const rpcTimeout = 10 * time.Second

// reply is a decoded reply.
type reply struct {
	status byte
	index  uint64
	err    error
	data   []byte // rpcQuery's answer
}

// errNotLeader says a request reached a node that does not lead (or no
// longer does) before anything was done: it may go to the leader.
var errNotLeader = errors.New("this node is not the raft leader")

// unreachableError is a failure to reach a node before sending it
// anything: the request may be sent again, there or elsewhere.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// serveRPC answers the requests of one connection until it closes.
func (n *Node) serveRPC(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		req, err := readFrame(r)
		if err != nil || len(req) == 0 {
			return
		}
		out := encodeReply(nil, n.handleRPC(req[0], req[1:]))
		c.SetWriteDeadline(time.Now().Add(rpcTimeout))
		if err := writeFrame(c, out); err != nil {
			return
		}
	}
}

// handleRPC runs one request on this node, which should be the leader.
func (n *Node) handleRPC(kind byte, payload []byte) reply {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposeTimeout)
	defer cancel()
	var rep reply
	var err error
	switch kind {
	case rpcPropose:
		rep, err = n.applyAsLeader(ctx, payload)
	case rpcReadIndex:
		rep.index, err = n.readIndexAsLeader(ctx)
	case rpcForget:
		err = n.forgetAsLeader(string(payload))
	case rpcQuery:
		rep.data, err = n.answerQuery(ctx, payload)
	default:
		err = fmt.Errorf("unknown inter-node request %d", kind)
	}
	switch {
	case errors.Is(err, errNotLeader):
		return reply{status: statusNotLeader}
	case err != nil:
		return reply{status: statusFailed, err: err}
	}
	return rep
}

// call sends one request to the node at addr and reads its reply.
func call(ctx context.Context, addr string, kind byte, payload []byte) (reply, error) {
	timeout := rpcTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return reply{}, &unreachableError{context.DeadlineExceeded}
	}
	c, err := dialStream(addr, min(timeout, 2*time.Second), streamWarren)
	if err != nil {
		return reply{}, &unreachableError{err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	c.SetDeadline(time.Now().Add(timeout))
	req := make([]byte, 0, 1+len(payload))
	req = append(append(req, kind), payload...)
	if err := writeFrame(c, req); err != nil {
		return reply{}, fmt.Errorf("send to %s: %w", addr, err)
	}
	body, err := readFrame(bufio.NewReader(c))
	if err != nil {
		return reply{}, fmt.Errorf("reply from %s: %w", addr, err)
	}
	rep, err := decodeReply(body)
	if err != nil {
		return reply{}, fmt.Errorf("reply from %s: %w", addr, err)
	}
	return rep, nil
}

func writeFrame(w io.Writer, body []byte) error {
	if len(body) > maxFrame {
		return fmt.Errorf("inter-node frame of %d bytes exceeds %d", len(body), maxFrame)
	}
	b := make([]byte, 0, 4+len(body))
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxFrame {
		return nil, fmt.Errorf("inter-node frame of %d bytes exceeds %d", size, maxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func encodeReply(buf []byte, r reply) []byte {
	buf = append(buf, r.status)
	buf = binary.AppendUvarint(buf, r.index)
	var ae *amqp.Error
	switch {
	case r.err == nil:
		buf = append(buf, 0)
	case errors.As(r.err, &ae):
		buf = append(buf, 1)
		buf = binary.BigEndian.AppendUint16(buf, ae.Code)
		buf = binary.BigEndian.AppendUint16(buf, ae.ClassID)
		buf = binary.BigEndian.AppendUint16(buf, ae.MethodID)
		buf = appendString(buf, ae.Text)
	default:
		buf = append(buf, 2)
		buf = appendString(buf, r.err.Error())
	}
	if r.data != nil {
		buf = binary.AppendUvarint(buf, uint64(len(r.data)))
		buf = append(buf, r.data...)
	}
	return buf
}

func decodeReply(b []byte) (reply, error) {
	bad := errors.New("malformed inter-node reply")
	if len(b) < 1 {
		return reply{}, bad
	}
	r := reply{status: b[0]}
	var n int
	if r.index, n = binary.Uvarint(b[1:]); n <= 0 {
		return reply{}, bad
	}
	b = b[1+n:]
	if len(b) < 1 {
		return reply{}, bad
	}
	kind := b[0]
	b = b[1:]
	switch kind {
	case 0:
	case 1:
		if len(b) < 6 {
			return reply{}, bad
		}
		ae := &amqp.Error{Code: binary.BigEndian.Uint16(b), ClassID: binary.BigEndian.Uint16(b[2:]), MethodID: binary.BigEndian.Uint16(b[4:])}
		text, rest, err := decodeBytes(b[6:])
		if err != nil {
			return reply{}, bad
		}
		ae.Text = string(text)
		r.err = ae
		b = rest
	case 2:
		text, rest, err := decodeBytes(b)
		if err != nil {
			return reply{}, bad
		}
		r.err = errors.New(string(text))
		b = rest
	default:
		return reply{}, bad
	}
	if len(b) > 0 {
		data, _, err := decodeBytes(b)
		if err != nil {
			return reply{}, bad
		}
		r.data = data
		if r.data == nil {
			r.data = []byte{}
		}
	}
	return r, nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}
