package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// The sink is a minimal AMQP peer that completes the handshake, answers the
// few methods warren-perf sends and discards every publish. Publishing into
// it measures warren-perf's own publish ceiling. It is also a source: a
// basic.consume gets 16 B deliveries as fast as the consumer's prefetch
// allows, which measures warren-perf's own consume ceiling.

// startSink listens on a loopback port and serves sink connections.
func startSink() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("sink listen: %w", err)
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSink(nc)
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }, nil
}

func serveSink(nc net.Conn) {
	defer nc.Close()
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(nc, hdr); err != nil || !bytes.Equal(hdr, amqp.ProtocolHeader) {
		return
	}
	fr := amqp.NewFrameReader(nc, 256<<10)
	out := amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStart{VersionMinor: 9,
		ServerProperties: amqp.Table{"product": "warren-perf sink"}, Mechanisms: "PLAIN", Locales: "en_US"})
	var wmu sync.Mutex // the reader's replies and the sources' deliveries
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		wmu.Lock()
		_, err := nc.Write(out)
		wmu.Unlock()
		out = out[:0]
		return err == nil
	}
	flush()
	s := sinkConn{confirm: map[uint16]uint64{}, qos: map[uint16]int{}, sources: map[uint16]*source{}}
	defer s.stopSources()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Type == amqp.FrameMethod {
			m, err := s.dec.Decode(f.Payload)
			if err != nil {
				return
			}
			reply, done := s.answer(f.Channel, m)
			out = append(out, reply...)
			if done {
				flush()
				return
			}
			if src := s.starting; src != nil { // after its consume-ok
				s.starting = nil
				if !flush() {
					return
				}
				go src.run(nc, &wmu)
			}
		}
		if fr.Buffered() == 0 && !flush() {
			return
		}
	}
}

// sinkConn is one sink connection's state.
type sinkConn struct {
	dec     amqp.MethodDecoder
	confirm map[uint16]uint64 // channels in confirm mode: last publish number
	reply   []byte

	qos      map[uint16]int     // prefetch count per channel
	sources  map[uint16]*source // consumers being fed, one per channel
	starting *source            // a source to start once its consume-ok is sent
}

// stopSources ends every source of the connection.
func (s *sinkConn) stopSources() {
	for _, src := range s.sources {
		src.stop()
	}
}

// source feeds one consumer deliveries, never more unacknowledged than its
// prefetch (1000 when it set none; a no-ack consumer is fed without limit).
type source struct {
	ch       uint16
	tag      string
	prefetch int
	noAck    bool

	mu      sync.Mutex
	more    *sync.Cond // signalled on acks and on stop
	sent    uint64     // the last delivery tag sent
	acked   uint64     // deliveries acknowledged
	stopped bool
}

func newSource(ch uint16, tag string, prefetch int, noAck bool) *source {
	if prefetch <= 0 {
		prefetch = 1000
	}
	src := &source{ch: ch, tag: tag, prefetch: prefetch, noAck: noAck}
	src.more = sync.NewCond(&src.mu)
	return src
}

// ack records basic.ack.
func (src *source) ack(tag uint64, multiple bool) {
	src.mu.Lock()
	if multiple {
		src.acked = max(src.acked, tag)
	} else {
		src.acked++
	}
	src.mu.Unlock()
	src.more.Signal()
}

func (src *source) stop() {
	src.mu.Lock()
	src.stopped = true
	src.mu.Unlock()
	src.more.Signal()
}

// sourceBatch is the most deliveries written with one syscall.
const sourceBatch = 256

// run writes deliveries to nc until the source stops or a write fails.
func (src *source) run(nc net.Conn, wmu *sync.Mutex) {
	var buf []byte
	// Every delivery is the same frames but for its tag and the send time
	// in the body: encode them once.
	tmpl := amqp.AppendMethodFrame(nil, src.ch, &amqp.BasicDeliver{ConsumerTag: src.tag, RoutingKey: "perf"})
	tagAt := 7 + 4 + 1 + min(len(src.tag), 255) // frame header, ids, the consumer tag
	tmpl = amqp.AppendHeaderFrame(tmpl, src.ch, amqp.ClassBasic, 16, &amqp.Properties{})
	stampAt := len(tmpl) + 7
	tmpl = amqp.AppendBodyFrames(tmpl, src.ch, make([]byte, 16), 131072)
	for {
		src.mu.Lock()
		for !src.stopped && !src.noAck && int(src.sent-src.acked) >= src.prefetch {
			src.more.Wait()
		}
		if src.stopped {
			src.mu.Unlock()
			return
		}
		n := sourceBatch
		if !src.noAck {
			n = min(n, src.prefetch-int(src.sent-src.acked))
		}
		first := src.sent + 1
		src.sent += uint64(n)
		src.mu.Unlock()

		buf = buf[:0]
		now := uint64(time.Now().UnixNano())
		for tag := first; tag < first+uint64(n); tag++ {
			at := len(buf)
			buf = append(buf, tmpl...)
			binary.BigEndian.PutUint64(buf[at+tagAt:], tag)
			binary.BigEndian.PutUint64(buf[at+stampAt:], now)
		}
		wmu.Lock()
		_, err := nc.Write(buf)
		wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// answer returns the frames that answer m, and whether the connection ends.
func (s *sinkConn) answer(ch uint16, m amqp.Method) ([]byte, bool) {
	s.reply = s.reply[:0]
	send := func(m amqp.Method) { s.reply = amqp.AppendMethodFrame(s.reply, ch, m) }
	switch m := m.(type) {
	case *amqp.ConnectionStartOk:
		send(&amqp.ConnectionTune{ChannelMax: 2047, FrameMax: 131072})
	case *amqp.ConnectionOpen:
		send(&amqp.ConnectionOpenOk{})
	case *amqp.ConnectionClose:
		send(&amqp.ConnectionCloseOk{})
		return s.reply, true
	case *amqp.ChannelOpen:
		send(&amqp.ChannelOpenOk{})
	case *amqp.ChannelClose:
		if src := s.sources[ch]; src != nil {
			src.stop()
			delete(s.sources, ch)
		}
		send(&amqp.ChannelCloseOk{})
	case *amqp.QueueDeclare:
		send(&amqp.QueueDeclareOk{Queue: m.Queue})
	case *amqp.QueueBind:
		send(&amqp.QueueBindOk{})
	case *amqp.QueueDelete:
		send(&amqp.QueueDeleteOk{})
	case *amqp.ExchangeDeclare:
		send(&amqp.ExchangeDeclareOk{})
	case *amqp.ExchangeDelete:
		send(&amqp.ExchangeDeleteOk{})
	case *amqp.BasicQos:
		s.qos[ch] = int(m.PrefetchCount)
		send(&amqp.BasicQosOk{})
	case *amqp.BasicConsume:
		if s.sources[ch] != nil {
			break // one consumer per channel is all warren-perf opens
		}
		tag := m.ConsumerTag
		if tag == "" {
			tag = fmt.Sprintf("sink-%d", ch)
		}
		src := newSource(ch, tag, s.qos[ch], m.NoAck)
		s.sources[ch], s.starting = src, src
		if !m.NoWait {
			send(&amqp.BasicConsumeOk{ConsumerTag: tag})
		}
	case *amqp.BasicAck:
		if src := s.sources[ch]; src != nil {
			src.ack(m.DeliveryTag, m.Multiple)
		}
	case *amqp.ConfirmSelect:
		s.confirm[ch] = 0
		send(&amqp.ConfirmSelectOk{})
	case *amqp.BasicPublish:
		if n, ok := s.confirm[ch]; ok {
			s.confirm[ch] = n + 1
			send(&amqp.BasicAck{DeliveryTag: n + 1})
		}
	}
	return s.reply, false
}
