package main

import (
	"bytes"
	"fmt"
	"io"
	"net"

	"github.com/warrenmq/warren/amqp"
)

// The sink is a minimal AMQP peer that completes the handshake, answers the
// few methods warren-perf sends and discards every publish. Publishing into
// it measures warren-perf's own ceiling.

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
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		_, err := nc.Write(out)
		out = out[:0]
		return err == nil
	}
	flush()
	s := sinkConn{confirm: map[uint16]uint64{}}
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
		send(&amqp.BasicQosOk{})
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
