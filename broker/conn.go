package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// closeOkTimeout bounds the wait for a peer's close-ok after we close.
const closeOkTimeout = 3 * time.Second

// handshakeErrorDelay is how long a connection that failed before tune-ok
// waits before its socket closes, as in RabbitMQ: a client then is not
// trusted yet, and a misbehaving one cannot retry at full speed.
const handshakeErrorDelay = 3 * time.Second

// startOkFrameMax and tuneOkFrameMax are the largest frames accepted
// before tune-ok sets the frame-max: the spec's minimum of 4096 bytes,
// except that RabbitMQ 3.10 takes a connection.start-ok whose payload
// alone is 4096 bytes (checked against it: 4104 bytes in all, but not
// 4105), and the frames after it only up to 4096 bytes in all.
const (
	startOkFrameMax = amqp.FrameMinSize + 8
	tuneOkFrameMax  = amqp.FrameMinSize
)

// closedTimeout bounds how long a connection stays open after it sent
// connection.close-ok to a client that closed: as in RabbitMQ, the client
// closes the socket first, and the broker only after this long.
const closedTimeout = 30 * time.Second

// conn is one AMQP connection: a reader goroutine (serve) that parses
// frames and runs the channels' state machines, and a writer goroutine that
// drains the outbox to the socket.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   uint64
	name string // "127.0.0.1:50000 -> 127.0.0.1:5672"
	log  *slog.Logger
	out  *outbox

	// Negotiated in the handshake; read-only afterwards.
	user         User
	vhost        *Vhost
	clientProps  amqp.Table
	capabilities amqp.Table
	channelMax   uint16
	frameMax     uint32
	hbNanos      atomic.Int64 // negotiated heartbeat interval; read by the writer
	connectedAt  time.Time
	tuned        bool // tune-ok was accepted (reader-only)

	dec      amqp.MethodDecoder
	fr       *amqp.FrameReader
	chMu     sync.Mutex // guards writes to channels, and reads by other goroutines
	channels map[uint16]*channel
	lastCh   *channel

	outboxWasFull atomic.Bool // a no-ack consumer was held back by a full outbox
	confirmDirty  []*channel  // reader-only: channels with confirms marked but not sent

	opened       atomic.Bool // the handshake completed: the fields above are set
	closing      atomic.Bool // we sent connection.close and wait for close-ok
	clientClosed atomic.Bool // we answered the client's connection.close with close-ok
	closeOnce    sync.Once
	done         chan struct{} // closed when the connection is torn down
	wakeCh       chan struct{} // closed by wake: a reader held by an alarm stops waiting (blocked.go)
	wakeOnce     sync.Once
	writerDone   chan struct{} // closed when the writer has flushed and stopped; nil before it starts
	writing      net.Buffers   // the writer's current burst (a field, so writev needs no allocation)
	wrote        atomic.Bool   // the writer wrote frames other than heartbeats since the last tick

	mu        sync.Mutex // guards exclusive
	exclusive map[*localQueue]struct{}

	stats        connStats
	retired      Counters    // message counters of closed channels
	statsRetired atomic.Bool // retired were handed to the vhost
}

// connStats are per-connection counters, summed on read by management.
type connStats struct {
	recvOct, sendOct atomic.Uint64
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:         s,
		nc:          nc,
		id:          s.nextConn.Add(1),
		name:        fmt.Sprintf("%s -> %s", nc.RemoteAddr(), nc.LocalAddr()),
		out:         newOutbox(s.cfg.FrameMax),
		channels:    map[uint16]*channel{},
		done:        make(chan struct{}),
		wakeCh:      make(chan struct{}),
		exclusive:   map[*localQueue]struct{}{},
		connectedAt: time.Now(),
		frameMax:    s.cfg.FrameMax,
	}
	c.log = s.log.With("conn", c.name)
	return c
}

// deadlineReader sets a read deadline before each read of the socket, so
// that a peer silent for two heartbeat intervals is dropped.
type deadlineReader struct {
	c *conn
}

func (r deadlineReader) Read(p []byte) (int, error) {
	if hb := r.c.heartbeat(); hb > 0 && !r.c.closing.Load() {
		r.c.nc.SetReadDeadline(time.Now().Add(2 * hb))
	}
	n, err := r.c.nc.Read(p)
	r.c.stats.recvOct.Add(uint64(n))
	return n, err
}

// serve runs the connection until it closes.
func (c *conn) serve() {
	defer c.teardown()
	c.nc.SetDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	var hdr [8]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		c.log.Debug("no protocol header", "err", err)
		return
	}
	if !bytes.Equal(hdr[:], amqp.ProtocolHeader) {
		c.log.Info("bad protocol header, closing", "header", fmt.Sprintf("%q", hdr[:]))
		c.refuseProtocol()
		return
	}
	c.fr = amqp.NewFrameReader(deadlineReader{c}, 64<<10)
	c.fr.SetMaxFrameSize(startOkFrameMax)
	c.writerDone = make(chan struct{})
	go c.writeLoop()
	if err := c.handshake(); err != nil {
		c.failHandshake(err)
		return
	}
	c.nc.SetDeadline(time.Time{})
	c.opened.Store(true)
	c.log.Info("connection opened", "user", c.user.Name, "vhost", c.vhost.name)
	if _, ok := c.srv.users.Get(c.user.Name); !ok {
		// The user was deleted during the handshake: closeUserConnections
		// closes opened connections, and this one opened after it looked.
		c.forceClose(amqp.Errorf(amqp.ConnectionForced, "user '%s' was deleted", c.user.Name))
	}
	if c.vhost.deleted.Load() {
		// DeleteVhost closes opened connections; this one opened as the
		// vhost went (see DeleteVhost).
		c.forceClose(amqp.Errorf(amqp.ConnectionForced, "vhost '%s' is deleted", c.vhost.name))
	}
	c.readLoop()
}

// refuseProtocol answers a foreign protocol header with ours and closes,
// half-closing first so the peer reads our header before the close.
func (c *conn) refuseProtocol() {
	c.nc.Write(amqp.ProtocolHeader)
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(c.nc, 1<<16))
	}
}

// failHandshake reports a handshake error to the peer as RabbitMQ does.
// Once tune-ok is in, the error goes out as connection.close. Before, the
// connection closes without a word after handshakeErrorDelay, except
// that refused credentials get connection.close 403 when the client
// announced authentication_failure_close.
func (c *conn) failHandshake(err error) {
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		c.log.Info("handshake failed", "err", err)
		return
	}
	c.log.Warn("connection refused", "code", ae.Code, "reason", ae.Text)
	if c.tuned || ae.Code == amqp.AccessRefused && c.announces("authentication_failure_close") {
		c.closeWith(ae)
		c.awaitCloseOk()
		return
	}
	t := time.NewTimer(handshakeErrorDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.srv.stop:
	}
}

// announces reports whether the client announced a capability.
func (c *conn) announces(capability string) bool {
	b, _ := c.capabilities[capability].(bool)
	return b
}

func (c *conn) serverProperties() amqp.Table {
	caps := amqp.Table{}
	for _, k := range []string{"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "connection.blocked", "consumer_priorities",
		"authentication_failure_close", "per_consumer_qos", "direct_reply_to"} {
		caps[k] = true
	}
	host, _ := os.Hostname()
	return amqp.Table{
		"product":      c.srv.cfg.Product,
		"version":      c.srv.cfg.Version,
		"platform":     "Go " + runtime.Version(),
		"cluster_name": "warren@" + host,
		"copyright":    "Warren developers",
		"information":  "Licensed under the MPL 2.0. Website: https://github.com/warrenmq/warren",
		"capabilities": caps,
	}
}

// readMethod reads the next frame during the handshake, which must be a method on channel 0.
func (c *conn) readMethod() (amqp.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if f.Type == amqp.FrameHeartbeat {
			continue
		}
		if f.Type != amqp.FrameMethod || f.Channel != 0 {
			return nil, amqp.Errorf(amqp.UnexpectedFrame, "expected a method frame on channel 0 during the handshake")
		}
		return amqp.DecodeMethod(f.Payload)
	}
}

func (c *conn) handshake() error {
	cfg := c.srv.cfg
	c.out.method(0, &amqp.ConnectionStart{
		VersionMajor:     0,
		VersionMinor:     9,
		ServerProperties: c.serverProperties(),
		Mechanisms:       "PLAIN AMQPLAIN",
		Locales:          "en_US",
	})
	m, err := c.readMethod()
	if err != nil {
		return err
	}
	startOk, ok := m.(*amqp.ConnectionStartOk)
	if !ok {
		return amqp.Errorf(amqp.CommandInvalid, "expected 'connection.start_ok', got '%s'", m.Name())
	}
	c.fr.SetMaxFrameSize(tuneOkFrameMax)
	c.clientProps = startOk.ClientProperties
	c.capabilities, _ = startOk.ClientProperties["capabilities"].(amqp.Table)
	if name, ok := startOk.ClientProperties["connection_name"].(string); ok && name != "" {
		c.log = c.log.With("connection_name", name)
	}
	if err := c.authenticate(startOk.Mechanism, startOk.Response); err != nil {
		return err
	}

	c.out.method(0, &amqp.ConnectionTune{
		ChannelMax: cfg.ChannelMax,
		FrameMax:   cfg.FrameMax,
		Heartbeat:  uint16(cfg.Heartbeat / time.Second),
	})
	if m, err = c.readMethod(); err != nil {
		return err
	}
	tuneOk, ok := m.(*amqp.ConnectionTuneOk)
	if !ok {
		return amqp.Errorf(amqp.CommandInvalid, "expected 'connection.tune_ok', got '%s'", m.Name())
	}
	if err := c.applyTune(tuneOk); err != nil {
		return err
	}

	if m, err = c.readMethod(); err != nil {
		return err
	}
	open, ok := m.(*amqp.ConnectionOpen)
	if !ok {
		return amqp.Errorf(amqp.CommandInvalid, "expected 'connection.open', got '%s'", m.Name())
	}
	v := c.srv.Vhost(open.VirtualHost)
	if v == nil && c.srv.lookAgain() {
		v = c.srv.Vhost(open.VirtualHost)
	}
	if v == nil {
		return amqp.Errorf(amqp.NotAllowed, "vhost %s not found", open.VirtualHost)
	}
	if !c.srv.users.HasVhostAccess(c.user.Name, v.name) {
		if !c.srv.lookAgain() || !c.srv.users.HasVhostAccess(c.user.Name, v.name) {
			return amqp.Errorf(amqp.NotAllowed, "access to vhost '%s' refused for user '%s'", v.name, c.user.Name)
		}
	}
	c.vhost = v
	c.out.method(0, &amqp.ConnectionOpenOk{})
	return nil
}

// applyTune checks the client's tune-ok and applies the negotiated limits.
func (c *conn) applyTune(t *amqp.ConnectionTuneOk) error {
	cfg := c.srv.cfg
	if t.FrameMax < amqp.FrameMinSize || t.FrameMax > cfg.FrameMax {
		return amqp.Errorf(amqp.NotAllowed, "negotiated frame_max = %d is outside the allowed range [%d, %d]",
			t.FrameMax, amqp.FrameMinSize, cfg.FrameMax)
	}
	if t.ChannelMax > cfg.ChannelMax {
		return amqp.Errorf(amqp.NotAllowed, "negotiated channel_max = %d is higher than the maximum allowed value (%d)",
			t.ChannelMax, cfg.ChannelMax)
	}
	c.channelMax = t.ChannelMax
	if c.channelMax == 0 {
		c.channelMax = cfg.ChannelMax
	}
	c.frameMax = t.FrameMax
	c.fr.SetMaxFrameSize(t.FrameMax)
	c.out.mu.Lock()
	c.out.frameMax = t.FrameMax
	c.out.mu.Unlock()
	c.hbNanos.Store(int64(time.Duration(t.Heartbeat) * time.Second))
	c.tuned = true
	return nil
}

// heartbeat returns the negotiated heartbeat interval (0: none).
func (c *conn) heartbeat() time.Duration { return time.Duration(c.hbNanos.Load()) }

// authenticate checks the credentials of connection.start-ok.
func (c *conn) authenticate(mechanism, response string) error {
	var user, pass string
	switch mechanism {
	case "PLAIN":
		parts := strings.SplitN(response, "\x00", 3)
		if len(parts) != 3 {
			return amqp.Errorf(amqp.AccessRefused, "Login was refused using authentication mechanism PLAIN. For details see the broker logfile.")
		}
		user, pass = parts[1], parts[2]
	case "AMQPLAIN":
		var b []byte
		b = binary.BigEndian.AppendUint32(b, uint32(len(response)))
		b = append(b, response...)
		t, _, err := amqp.DecodeTable(b)
		if err != nil {
			return amqp.Errorf(amqp.AccessRefused, "Login was refused using authentication mechanism AMQPLAIN. For details see the broker logfile.")
		}
		user, _ = t["LOGIN"].(string)
		pass, _ = t["PASSWORD"].(string)
	default:
		return amqp.Errorf(amqp.CommandInvalid, "unknown authentication mechanism '%s'", mechanism)
	}
	refused := amqp.Errorf(amqp.AccessRefused, "Login was refused using authentication mechanism %s. For details see the broker logfile.", mechanism)
	u, ok := c.srv.users.Authenticate(user, pass)
	if !ok && c.srv.lookAgain() { // a user just added on another node
		u, ok = c.srv.users.Authenticate(user, pass)
	}
	if !ok {
		c.log.Warn("authentication failed", "user", user, "mechanism", mechanism)
		return refused
	}
	if c.srv.isLoopbackOnly(user) && !isLoopback(c.nc.RemoteAddr()) {
		c.log.Warn("user may connect only from loopback", "user", user)
		return refused
	}
	c.user = u
	return nil
}

// isLoopbackOnly reports whether user may connect only from loopback.
func (s *Server) isLoopbackOnly(user string) bool {
	for _, u := range s.cfg.LoopbackUsers {
		if u == user {
			return true
		}
	}
	return false
}

func isLoopback(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return false
}

// writeLoop drains the outbox to the socket, one write per burst, and sends
// heartbeats when nothing else was sent for a heartbeat interval.
func (c *conn) writeLoop() {
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
		close(c.writerDone)
	}()
	for {
		select {
		case <-c.out.signal:
		case <-tick:
			// As in RabbitMQ, a heartbeat goes out in every half interval
			// in which nothing else did; heartbeats do not count as
			// traffic, so an idle client hears from us every half interval.
			if !c.wrote.Swap(false) {
				if err := c.writeHeartbeat(); err != nil {
					c.log.Debug("write failed", "err", err)
					c.nc.Close()
					return
				}
			}
			continue
		case <-c.done:
			c.writeBurst() // the last frames, e.g. close-ok
			return
		}
		if err := c.writeBurst(); err != nil {
			c.log.Debug("write failed", "err", err)
			c.nc.Close() // the reader sees the error and tears down
			c.wake()
			return
		}
		c.afterWrite()
		if tick == nil && c.heartbeat() > 0 {
			// The first write after tune-ok (open-ok) starts the
			// heartbeats; the handshake does not count as traffic.
			ticker = time.NewTicker(c.heartbeat() / 2)
			tick = ticker.C
			c.wrote.Store(false)
		}
	}
}

// write writes bufs to the socket (with writev when there are several)
// with a deadline.
func (c *conn) write(bufs net.Buffers) error {
	if len(bufs) == 0 {
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout(c.heartbeat())))
	c.writing = bufs
	n, err := c.writing.WriteTo(c.nc)
	c.writing = nil
	c.stats.sendOct.Add(uint64(n))
	c.wrote.Store(true)
	return err
}

// writeHeartbeat writes a heartbeat frame. Only the writer calls it, so
// it cannot land inside another frame.
func (c *conn) writeHeartbeat() error {
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout(c.heartbeat())))
	n, err := c.nc.Write(heartbeatFrame)
	c.stats.sendOct.Add(uint64(n))
	return err
}

// heartbeatFrame is an encoded heartbeat.
var heartbeatFrame = amqp.AppendHeartbeat(nil)

func writeTimeout(hb time.Duration) time.Duration {
	if hb > 0 {
		return 2 * hb
	}
	return 2 * time.Minute
}

// closeWith sends connection.close with err and marks the connection closing.
func (c *conn) closeWith(err *amqp.Error) {
	if c.closing.Swap(true) {
		return
	}
	c.out.method(0, &amqp.ConnectionClose{ReplyCode: err.Code, ReplyText: err.Text, FailingClassID: err.ClassID, FailingMethodID: err.MethodID})
}

// awaitCloseOk reads until the peer's close-ok (or close), an error, or a timeout.
func (c *conn) awaitCloseOk() {
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Type != amqp.FrameMethod || f.Channel != 0 {
			continue
		}
		m, err := amqp.DecodeMethod(f.Payload)
		if err != nil {
			return
		}
		switch m.(type) {
		case *amqp.ConnectionCloseOk:
			return
		case *amqp.ConnectionClose:
			c.out.method(0, &amqp.ConnectionCloseOk{})
			return
		}
	}
}

// forceClose closes the connection from another goroutine (shutdown,
// management): it sends connection.close and lets the reader wait for close-ok.
func (c *conn) forceClose(err *amqp.Error) {
	if c.clientClosed.Load() {
		c.nc.SetReadDeadline(time.Now()) // it waits for the client to go: end that now
		return
	}
	c.closeWith(err)
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	c.wake()
}

// teardown releases everything the connection held.
func (c *conn) teardown() {
	c.closeOnce.Do(func() {
		for _, ch := range c.channels {
			ch.shutdown()
		}
		c.chMu.Lock()
		for _, ch := range c.channels {
			c.retireChannelLocked(ch)
		}
		c.channels = nil
		c.chMu.Unlock()
		if c.vhost != nil {
			s := c.retired.Snapshot()
			c.vhost.retired.addAll(&s)
			c.statsRetired.Store(true)
		}
		c.dropExclusiveQueues()
		close(c.done)
		if c.writerDone != nil {
			<-c.writerDone // bounded by the write deadline
		}
		c.out.close()
		if c.clientClosed.Load() {
			c.awaitClientClose()
		}
		c.nc.Close()
		if c.vhost != nil {
			c.log.Info("connection closed")
		}
	})
}

// awaitClientClose reads and drops what a client that closed the
// connection still sends, until it closes the socket or closedTimeout
// passes. Closing first would reset a client still flushing frames it
// wrote before its connection.close (or unread frames would make the
// close a reset): RabbitMQ too leaves the socket to the client.
func (c *conn) awaitClientClose() {
	if c.nc.SetReadDeadline(time.Now().Add(closedTimeout)) != nil {
		return
	}
	io.Copy(io.Discard, c.nc)
}

// dropExclusiveQueues deletes the connection's exclusive queues.
func (c *conn) dropExclusiveQueues() {
	c.mu.Lock()
	excl := make([]*localQueue, 0, len(c.exclusive))
	for q := range c.exclusive {
		excl = append(excl, q)
	}
	c.mu.Unlock()
	for _, q := range excl {
		q.vhost.autoDeleteQueue(q)
	}
}

func (c *conn) addExclusive(q *localQueue) {
	c.mu.Lock()
	c.exclusive[q] = struct{}{}
	c.mu.Unlock()
}

func (c *conn) removeExclusive(q *localQueue) {
	c.mu.Lock()
	delete(c.exclusive, q)
	c.mu.Unlock()
}

// channelList returns the connection's open channels; any goroutine may call it.
func (c *conn) channelList() []*channel {
	c.chMu.Lock()
	defer c.chMu.Unlock()
	out := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		out = append(out, ch)
	}
	return out
}
