package broker_test

import (
	"net"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// rawClient speaks AMQP frame by frame, to send what real clients never do.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	fr *amqp.FrameReader
}

// dialRaw connects and completes the handshake with the given tune-ok values.
func dialRaw(t testing.TB, addr string, frameMax uint32, heartbeat, channelMax uint16) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawClient{t: t, nc: nc, fr: amqp.NewFrameReader(nc, 64<<10)}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r.writeRaw(amqp.ProtocolHeader)
	if _, ok := r.expectMethod(0).(*amqp.ConnectionStart); !ok {
		t.Fatal("expected connection.start")
	}
	r.writeRaw(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStartOk{
		ClientProperties: amqp.Table{"capabilities": amqp.Table{"authentication_failure_close": true}},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	}))
	if _, ok := r.expectMethod(0).(*amqp.ConnectionTune); !ok {
		t.Fatal("expected connection.tune")
	}
	r.writeRaw(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionTuneOk{ChannelMax: channelMax, FrameMax: frameMax, Heartbeat: heartbeat}))
	r.writeRaw(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionOpen{VirtualHost: "/"}))
	if _, ok := r.expectMethod(0).(*amqp.ConnectionOpenOk); !ok {
		t.Fatal("expected connection.open-ok")
	}
	nc.SetDeadline(time.Time{})
	return r
}

func (r *rawClient) writeRaw(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// expectMethod reads frames (skipping heartbeats) until a method on channel.
func (r *rawClient) expectMethod(channel uint16) amqp.Method {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("read frame: %v", err)
		}
		if f.Type == amqp.FrameHeartbeat {
			continue
		}
		if f.Type != amqp.FrameMethod || f.Channel != channel {
			r.t.Fatalf("got frame type %d on channel %d, want a method on %d", f.Type, f.Channel, channel)
		}
		m, err := amqp.DecodeMethod(f.Payload)
		if err != nil {
			r.t.Fatalf("decode: %v", err)
		}
		return m
	}
}

// expectConnectionClose waits for connection.close, answers close-ok and
// returns the reply code.
func (r *rawClient) expectConnectionClose() uint16 {
	r.t.Helper()
	for {
		m := r.expectAnyMethod()
		if cc, ok := m.(*amqp.ConnectionClose); ok {
			r.writeRaw(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionCloseOk{}))
			return cc.ReplyCode
		}
	}
}

func (r *rawClient) expectAnyMethod() amqp.Method {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("read frame: %v", err)
		}
		if f.Type != amqp.FrameMethod {
			continue
		}
		m, err := amqp.DecodeMethod(f.Payload)
		if err != nil {
			r.t.Fatalf("decode: %v", err)
		}
		return m
	}
}
