package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// The fast client speaks AMQP 0-9-1 directly over Warren's codec, for the
// hot path of warren-perf's producers and consumers: frames are appended to
// a reused buffer and written once per batch, and deliveries are parsed in
// place from the frame reader's buffer. It knows just enough of the
// protocol to publish and consume on one channel of any AMQP 0-9-1 broker;
// declares and deletes keep using amqp091-go on another connection.

// fastChannel is the one channel a fast connection opens.
const fastChannel = 1

// setupTimeout bounds the handshake and each client's setup (qos, consume,
// confirm.select): a broker that does not answer fails the run.
const setupTimeout = 10 * time.Second

// closeTimeout bounds the wait for connection.close-ok, and for a write to
// a broker that stopped reading, once a run ends.
const closeTimeout = 2 * time.Second

// errClosing is returned by writes after connection.close was sent.
var errClosing = errors.New("connection closing")

// fastConn is a minimal AMQP 0-9-1 client connection with one channel.
//
// One goroutine reads frames (fr); writes come from that goroutine and at
// most one other, serialised by wmu. The reader reports what it learns to
// the writer through atomics and the wake channel.
type fastConn struct {
	nc       net.Conn
	fr       *amqp.FrameReader
	frameMax uint32

	wmu     sync.Mutex // serialises writes to nc, guards acks
	closing atomic.Bool
	acks    []byte        // basic.ack frames not yet written
	ack     amqp.BasicAck // reused to encode them

	errOnce sync.Once
	err     error         // the first failure; read it after failed is closed
	failed  chan struct{} // closed by fail

	blocked atomic.Bool   // connection.blocked until connection.unblocked
	waiting atomic.Bool   // the writer waits on wake
	wake    chan struct{} // capacity 1: the reader signals progress
}

// fastURI is what the fast client takes from an amqp:// URI.
type fastURI struct {
	addr, user, pass, vhost string
}

// parseFastURI parses an amqp:// URI the way amqp091-go does: port 5672 by
// default, guest/guest without credentials, vhost "/" for an empty path.
func parseFastURI(uri string) (fastURI, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return fastURI{}, fmt.Errorf("parse URI: %w", err)
	}
	if u.Scheme != "amqp" {
		return fastURI{}, fmt.Errorf("URI scheme %q: the fast client speaks amqp:// only (use --client amqp091)", u.Scheme)
	}
	f := fastURI{addr: u.Host, user: "guest", pass: "guest", vhost: "/"}
	if u.Port() == "" {
		f.addr = net.JoinHostPort(u.Hostname(), "5672")
	}
	if u.User != nil {
		f.user = u.User.Username()
		if p, ok := u.User.Password(); ok {
			f.pass = p
		}
	}
	if len(u.Path) > 1 {
		f.vhost = u.Path[1:]
	}
	return f, nil
}

// dialFast connects, completes the handshake (PLAIN with the URI's
// credentials, the broker's frame-max, no heartbeats) and opens the channel.
func dialFast(ctx context.Context, uri string) (*fastConn, error) {
	u, err := parseFastURI(uri)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true) // writes are batched already
	}
	c := &fastConn{nc: nc, fr: amqp.NewFrameReader(nc, 1<<20), failed: make(chan struct{}), wake: make(chan struct{}, 1)}
	// The handshake must not outlast the context or hang on a silent peer.
	deadline := time.Now().Add(setupTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc.SetDeadline(deadline)
	if err := c.handshake(u); err != nil {
		nc.Close()
		return nil, fmt.Errorf("AMQP handshake with %s: %w", u.addr, err)
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// clientProperties announce the capabilities whose methods the fast client
// handles.
var clientProperties = amqp.Table{
	"product":  "warren-perf",
	"platform": "Go",
	"capabilities": amqp.Table{
		"publisher_confirms":           true,
		"basic.nack":                   true,
		"connection.blocked":           true,
		"consumer_cancel_notify":       true,
		"authentication_failure_close": true,
	},
}

func (c *fastConn) handshake(u fastURI) error {
	if _, err := c.nc.Write(amqp.ProtocolHeader); err != nil {
		return fmt.Errorf("write protocol header: %w", err)
	}
	m, err := c.await(0)
	if err != nil {
		return fmt.Errorf("await connection.start: %w", err)
	}
	start, ok := m.(*amqp.ConnectionStart)
	if !ok {
		return fmt.Errorf("got %s, want connection.start", m.Name())
	}
	if !hasWord(start.Mechanisms, "PLAIN") {
		return fmt.Errorf("the broker offers mechanisms %q, not PLAIN", start.Mechanisms)
	}
	if err := c.send(0, &amqp.ConnectionStartOk{ClientProperties: clientProperties, Mechanism: "PLAIN",
		Response: "\x00" + u.user + "\x00" + u.pass, Locale: "en_US"}); err != nil {
		return err
	}
	if m, err = c.await(0); err != nil {
		return fmt.Errorf("await connection.tune: %w", err)
	}
	tune, ok := m.(*amqp.ConnectionTune)
	if !ok {
		return fmt.Errorf("got %s, want connection.tune", m.Name())
	}
	c.frameMax = tune.FrameMax
	if c.frameMax == 0 || c.frameMax > 1<<20 {
		c.frameMax = 1 << 20 // no limit from the broker: ours
	}
	if c.frameMax < amqp.FrameMinSize {
		return fmt.Errorf("the broker's frame-max %d is below the protocol's minimum %d", c.frameMax, amqp.FrameMinSize)
	}
	c.fr.SetMaxFrameSize(c.frameMax)
	if err := c.send(0, &amqp.ConnectionTuneOk{ChannelMax: fastChannel, FrameMax: c.frameMax}); err != nil {
		return err
	}
	if err := c.send(0, &amqp.ConnectionOpen{VirtualHost: u.vhost}); err != nil {
		return err
	}
	if m, err = c.await(0); err != nil {
		return fmt.Errorf("open vhost %q: %w", u.vhost, err)
	}
	if _, ok := m.(*amqp.ConnectionOpenOk); !ok {
		return fmt.Errorf("got %s, want connection.open-ok", m.Name())
	}
	return c.call(&amqp.ChannelOpen{}, &amqp.ChannelOpenOk{})
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}

// setup runs the synchronous calls before the hot path, within
// setupTimeout.
func (c *fastConn) setup(calls func() error) error {
	c.nc.SetDeadline(time.Now().Add(setupTimeout))
	if err := calls(); err != nil {
		return err
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}

// send writes one method frame.
func (c *fastConn) send(ch uint16, m amqp.Method) error {
	return c.write(amqp.AppendMethodFrame(nil, ch, m))
}

// call sends a synchronous method on the channel and checks that the
// reply is the method want. It is for setup, before the hot path's reader
// runs.
func (c *fastConn) call(m, want amqp.Method) error {
	if err := c.send(fastChannel, m); err != nil {
		return err
	}
	reply, err := c.await(fastChannel)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name(), err)
	}
	if reply.ClassID() != want.ClassID() || reply.MethodID() != want.MethodID() {
		return fmt.Errorf("%s: got %s, want %s", m.Name(), reply.Name(), want.Name())
	}
	return nil
}

// await reads frames until a method arrives on channel ch, handling what
// arrives meanwhile (a close from the broker ends the wait with its error).
func (c *fastConn) await(ch uint16) (amqp.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, c.readError(err)
		}
		if f.Type != amqp.FrameMethod {
			continue // heartbeats; content of a basic.return
		}
		m, err := amqp.DecodeMethod(f.Payload)
		if err != nil {
			return nil, fmt.Errorf("decode method on channel %d: %w", f.Channel, err)
		}
		if c.control(f.Channel, m) {
			return nil, c.error()
		}
		if c.closing.Load() {
			return nil, c.error()
		}
		switch m.(type) {
		case *amqp.ConnectionBlocked, *amqp.ConnectionUnblocked:
			continue // not a reply
		}
		if f.Channel == ch {
			return m, nil
		}
	}
}

// readError describes a failed read: the broker's reason when it closed
// the connection, otherwise the read error.
func (c *fastConn) readError(err error) error {
	select {
	case <-c.failed:
		return c.err
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the broker closed the connection: %w", err)
	}
	return fmt.Errorf("read frame: %w", err)
}

// methodID returns the class and method ids of a method frame's payload.
func methodID(payload []byte) (class, method uint16, ok bool) {
	if len(payload) < 4 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:]), true
}

// control acts on a method that is not the hot path's: a close from the
// broker, connection.blocked, a consumer cancelled by the broker. It reports
// whether the connection has ended.
func (c *fastConn) control(ch uint16, m amqp.Method) (ended bool) {
	switch m := m.(type) {
	case *amqp.ConnectionClose:
		c.fail(fmt.Errorf("connection closed by the broker: %w", brokerError(m.ReplyCode, m.ReplyText, m.FailingClassID, m.FailingMethodID)))
		c.closing.Store(true)
		c.writeAlways(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionCloseOk{}))
		return true
	case *amqp.ConnectionCloseOk:
		return true
	case *amqp.ConnectionBlocked:
		c.blocked.Store(true)
	case *amqp.ConnectionUnblocked:
		c.blocked.Store(false)
		c.signal()
	case *amqp.ChannelClose:
		c.fail(fmt.Errorf("channel closed by the broker: %w", brokerError(m.ReplyCode, m.ReplyText, m.FailingClassID, m.FailingMethodID)))
		c.writeAlways(amqp.AppendMethodFrame(nil, ch, &amqp.ChannelCloseOk{}))
		c.startClose()
	case *amqp.BasicCancel:
		c.fail(fmt.Errorf("consumer %q cancelled by the broker (queue deleted?)", m.ConsumerTag))
		c.startClose()
	}
	return false
}

// brokerError is the protocol exception a broker closed with.
func brokerError(code uint16, text string, class, method uint16) *amqp.Error {
	return &amqp.Error{Code: code, Text: text, ClassID: class, MethodID: method}
}

// fail records the connection's first failure and wakes the writer.
func (c *fastConn) fail(err error) {
	c.errOnce.Do(func() {
		c.err = err
		close(c.failed)
	})
}

// error returns the recorded failure, or a generic one.
func (c *fastConn) error() error {
	select {
	case <-c.failed:
		return c.err
	default:
		return errClosing
	}
}

// signal wakes the writer if it waits.
func (c *fastConn) signal() {
	if c.waiting.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// write writes b unless connection.close was sent.
func (c *fastConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return errClosing
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writeAlways writes a reply that is due even while closing (a close-ok).
func (c *fastConn) writeAlways(b []byte) {
	c.wmu.Lock()
	c.nc.Write(b)
	c.wmu.Unlock()
}

// queueAck adds a basic.ack to those written by the next flushAcks, or
// before connection.close.
func (c *fastConn) queueAck(tag uint64, multiple bool) {
	c.wmu.Lock()
	c.ack.DeliveryTag, c.ack.Multiple = tag, multiple
	c.acks = amqp.AppendMethodFrame(c.acks, fastChannel, &c.ack)
	c.wmu.Unlock()
}

// flushAcks writes the queued acks in one write.
func (c *fastConn) flushAcks() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() || len(c.acks) == 0 {
		return nil // startClose wrote them
	}
	_, err := c.nc.Write(c.acks)
	c.acks = c.acks[:0]
	if err != nil {
		return fmt.Errorf("write acks: %w", err)
	}
	return nil
}

// startClose sends the queued acks and connection.close, once; the reader
// then reads until close-ok, for at most closeTimeout.
func (c *fastConn) startClose() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Swap(true) {
		return
	}
	c.nc.SetDeadline(time.Now().Add(closeTimeout))
	if len(c.acks) > 0 {
		c.nc.Write(c.acks)
		c.acks = c.acks[:0]
	}
	c.nc.Write(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionClose{ReplyCode: amqp.ReplySuccess, ReplyText: "warren-perf done"}))
}

// close releases the socket.
func (c *fastConn) close() { c.nc.Close() }
