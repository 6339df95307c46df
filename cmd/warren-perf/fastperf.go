package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// fastFlushBytes is how much a fast producer buffers before one write.
const fastFlushBytes = 64 << 10

// errStopped ends a wait when the run's context ends.
var errStopped = errors.New("stopped")

// failure returns the connection's recorded failure, or nil.
func (c *fastConn) failure() error {
	select {
	case <-c.failed:
		return c.err
	default:
		return nil
	}
}

// fastPublisher is one fast producer: the caller's goroutine writes, a
// reader goroutine counts confirms and watches for closes and blocks.
type fastPublisher struct {
	conn   *fastConn
	cnt    *counters
	exited chan struct{} // closed when the reader returns

	confirmed atomic.Uint64 // publishes confirmed (acked or nacked)
	nacked    atomic.Uint64

	// Reader only: every tag up to low is confirmed, and the tags in
	// above (confirmed one by one, out of order) too.
	low   uint64
	above map[uint64]struct{}
}

// fastProduce publishes as produce does, over the fast client.
func fastProduce(ctx context.Context, c config, t topology, id int, cnt *counters, limit int) error {
	conn, err := dialFast(ctx, c.URI)
	if err != nil {
		return err
	}
	defer conn.close()
	if c.Confirm > 0 {
		err := conn.setup(func() error {
			return conn.call(&amqp.ConfirmSelect{}, &amqp.ConfirmSelectOk{})
		})
		if err != nil {
			return err
		}
	}
	p := &fastPublisher{conn: conn, cnt: cnt, exited: make(chan struct{})}
	go p.read()
	// A broker that stopped reading (blocked) must not hold the writer
	// beyond the end of the run.
	stop := context.AfterFunc(ctx, func() { conn.nc.SetWriteDeadline(time.Now().Add(closeTimeout)) })
	defer stop()
	err = p.publish(ctx, c, t, id, limit)
	conn.startClose()
	<-p.exited
	if errors.Is(err, errStopped) || ctx.Err() != nil {
		return nil
	}
	return err
}

// publish writes messages until ctx ends, the connection fails, or limit
// messages (limit > 0) are published and, with confirms, confirmed.
func (p *fastPublisher) publish(ctx context.Context, c config, t topology, id, limit int) error {
	conn := p.conn
	key := t.queues[id%len(t.queues)]
	if t.exchange != "" {
		key = c.RoutingKey
	}
	var props amqp.Properties
	if c.Persistent {
		props.DeliveryMode = amqp.DeliveryModePersistent
	}
	// Every message is the same three (or more) frames but for the send
	// time in the first 8 bytes of the body: encode them once.
	body := make([]byte, c.Size)
	tmpl := amqp.AppendMethodFrame(nil, fastChannel, &amqp.BasicPublish{Exchange: t.exchange, RoutingKey: key})
	tmpl = amqp.AppendHeaderFrame(tmpl, fastChannel, amqp.ClassBasic, uint64(len(body)), &props)
	stamp := len(tmpl) + 7 // past the body frame's header
	tmpl = amqp.AppendBodyFrames(tmpl, fastChannel, body, conn.frameMax)

	buf := make([]byte, 0, fastFlushBytes+len(tmpl))
	pending := 0 // messages in buf
	flush := func() error {
		select {
		case <-ctx.Done():
			return errStopped
		case <-conn.failed:
			return conn.err
		default:
		}
		if len(buf) == 0 {
			return nil
		}
		if err := conn.write(buf); err != nil {
			if f := conn.failure(); f != nil {
				return f
			}
			return err
		}
		p.cnt.published.Add(uint64(pending))
		buf, pending = buf[:0], 0
		return nil
	}
	window := uint64(c.Confirm)
	var sent uint64
	outstanding := func() uint64 {
		if n := p.confirmed.Load(); n < sent {
			return sent - n
		}
		return 0
	}
	var interval time.Duration
	var timer *time.Timer
	if c.Rate > 0 {
		interval = time.Second / time.Duration(c.Rate)
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
	}
	next := time.Now()
	for n := 0; limit == 0 || n < limit; n++ {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				if err := flush(); err != nil {
					return err
				}
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return errStopped
				}
			}
			next = next.Add(interval)
		}
		if conn.blocked.Load() {
			// Hold what is buffered: the broker does not read now.
			if err := p.wait(ctx, func() bool { return !conn.blocked.Load() }); err != nil {
				return err
			}
		}
		if window > 0 && outstanding() >= window {
			if err := flush(); err != nil {
				return err
			}
			if err := p.wait(ctx, func() bool { return outstanding() < window }); err != nil {
				return err
			}
		}
		if len(buf) >= fastFlushBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		at := len(buf)
		buf = append(buf, tmpl...)
		binary.BigEndian.PutUint64(buf[at+stamp:], uint64(time.Now().UnixNano()))
		pending++
		sent++
	}
	if err := flush(); err != nil {
		return err
	}
	if window > 0 { // a prefill: wait until the broker has every message
		return p.wait(ctx, func() bool { return outstanding() == 0 })
	}
	return nil
}

// wait blocks until ready, the run ends (errStopped) or the connection
// fails (its error). The reader signals after each change.
func (p *fastPublisher) wait(ctx context.Context, ready func() bool) error {
	conn := p.conn
	defer conn.waiting.Store(false)
	for {
		conn.waiting.Store(true)
		if ready() {
			return nil
		}
		select {
		case <-conn.wake:
		case <-ctx.Done():
			return errStopped
		case <-conn.failed:
			return conn.err
		}
	}
}

// read handles what the broker sends a producer: confirms, blocks and
// closes. It returns when the connection ends.
func (p *fastPublisher) read() {
	defer close(p.exited)
	conn := p.conn
	var dec amqp.MethodDecoder
	for {
		f, err := conn.fr.ReadFrame()
		if err != nil {
			if !conn.closing.Load() {
				conn.fail(conn.readError(err))
			}
			return
		}
		if f.Type != amqp.FrameMethod {
			continue // heartbeats; content of a basic.return
		}
		m, err := dec.Decode(f.Payload)
		if err != nil {
			conn.fail(fmt.Errorf("decode method from the broker: %w", err))
			return
		}
		switch m := m.(type) {
		case *amqp.BasicAck:
			p.confirm(m.DeliveryTag, m.Multiple)
		case *amqp.BasicNack:
			p.nacked.Add(1)
			p.confirm(m.DeliveryTag, m.Multiple)
		default:
			if conn.control(f.Channel, m) {
				return
			}
		}
	}
}

// confirm records basic.ack or basic.nack of tag (and, with multiple,
// every tag before it), then wakes the writer.
func (p *fastPublisher) confirm(tag uint64, multiple bool) {
	switch {
	case tag <= p.low: // already confirmed
	case multiple:
		for t := range p.above {
			if t <= tag {
				delete(p.above, t)
			}
		}
		p.low = tag
	case tag == p.low+1:
		p.low = tag
	default:
		if p.above == nil {
			p.above = make(map[uint64]struct{})
		}
		p.above[tag] = struct{}{}
	}
	for len(p.above) > 0 {
		if _, ok := p.above[p.low+1]; !ok {
			break
		}
		delete(p.above, p.low+1)
		p.low++
	}
	n := p.low + uint64(len(p.above))
	p.cnt.confirmed.Add(n - p.confirmed.Load())
	p.confirmed.Store(n)
	p.conn.signal()
}

// Consumer states between frames.
const (
	awaitDeliver = iota
	awaitHeader
	awaitBody
)

// fastConsume consumes as consume does, over the fast client.
func fastConsume(ctx context.Context, c config, queue string, cnt *counters, lat *reservoir) error {
	conn, err := dialFast(ctx, c.URI)
	if err != nil {
		return err
	}
	defer conn.close()
	err = conn.setup(func() error {
		if !c.AutoAck && c.Prefetch > 0 {
			if err := conn.call(&amqp.BasicQos{PrefetchCount: uint16(min(c.Prefetch, 65535))}, &amqp.BasicQosOk{}); err != nil {
				return err
			}
		}
		return conn.call(&amqp.BasicConsume{Queue: queue, NoAck: c.AutoAck}, &amqp.BasicConsumeOk{})
	})
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, conn.startClose)
	defer stop()
	err = receive(conn, c, cnt, lat)
	if ctx.Err() != nil {
		return nil // the run ended
	}
	return err
}

// receive reads deliveries until the connection ends, acking every
// c.MultiAck of them; acks are written when the reader has nothing more
// buffered, so a burst of deliveries costs one write.
func receive(conn *fastConn, c config, cnt *counters, lat *reservoir) error {
	multiAck := max(c.MultiAck, 1)
	queued := 0 // deliveries acked by queued acks
	flushEvery := 1 << 30
	if c.Prefetch > 0 { // never hold back acks the broker's credit waits for
		flushEvery = max(1, c.Prefetch/2)
	}
	state := awaitDeliver
	var (
		tag       uint64 // of the delivery being read
		remaining uint64 // body bytes still to come
		stamp     [8]byte
		stamped   int
		n         int
	)
	delivered := func() {
		state = awaitDeliver
		if conn.closing.Load() {
			return // the run ended: count no more
		}
		n++
		if stamped == len(stamp) && (c.Rate > 0 || n%8 == 0) { // at full speed a sample is enough
			sent := int64(binary.BigEndian.Uint64(stamp[:]))
			lat.add(time.Duration(time.Now().UnixNano() - sent))
		}
		if !c.AutoAck && n%multiAck == 0 { // before counting: a drain ends at the count
			conn.queueAck(tag, multiAck > 1)
			queued += multiAck
		}
		cnt.consume()
	}
	for {
		if queued > 0 && (conn.fr.Buffered() == 0 || queued >= flushEvery) {
			if err := conn.flushAcks(); err != nil {
				return err
			}
			queued = 0
		}
		f, err := conn.fr.ReadFrame()
		if err != nil {
			if conn.closing.Load() {
				return conn.failure()
			}
			return conn.readError(err)
		}
		switch f.Type {
		case amqp.FrameMethod:
			if class, method, ok := methodID(f.Payload); ok && class == amqp.ClassBasic && method == 60 {
				if state != awaitDeliver {
					return fmt.Errorf("basic.deliver before the previous delivery's content ended")
				}
				if tag, ok = deliveryTag(f.Payload[4:]); !ok {
					return fmt.Errorf("malformed basic.deliver of %d bytes", len(f.Payload))
				}
				state = awaitHeader
				continue
			}
			m, err := amqp.DecodeMethod(f.Payload)
			if err != nil {
				return fmt.Errorf("decode method from the broker: %w", err)
			}
			if conn.control(f.Channel, m) {
				return conn.failure()
			}
		case amqp.FrameHeader:
			if state != awaitHeader {
				return fmt.Errorf("content header without a basic.deliver")
			}
			if len(f.Payload) < 14 {
				return fmt.Errorf("content header of %d bytes is too short", len(f.Payload))
			}
			remaining, stamped, state = binary.BigEndian.Uint64(f.Payload[4:]), 0, awaitBody
			if remaining == 0 {
				delivered()
			}
		case amqp.FrameBody:
			if state != awaitBody {
				return fmt.Errorf("content body without a basic.deliver and header")
			}
			if uint64(len(f.Payload)) > remaining {
				return fmt.Errorf("content body longer than its header's size")
			}
			if stamped < len(stamp) {
				stamped += copy(stamp[stamped:], f.Payload)
			}
			remaining -= uint64(len(f.Payload))
			if remaining == 0 {
				delivered()
			}
		}
	}
}

// deliveryTag parses the delivery tag from basic.deliver's arguments
// (consumer tag, delivery tag, ...) without decoding the strings.
func deliveryTag(args []byte) (uint64, bool) {
	if len(args) < 1 {
		return 0, false
	}
	at := 1 + int(args[0])
	if len(args) < at+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(args[at:]), true
}
