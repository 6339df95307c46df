package broker_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// Connection and channel lifecycle as RabbitMQ runs it, frame by frame
// (issue 15, items 1-5). Each test runs against Warren and RabbitMQ.

// publishFrames returns a basic.publish of body to the default exchange
// with key, with its header and body frames, on channel.
func publishFrames(channel uint16, key string, persistent bool, body string) []byte {
	props := amqp.Properties{}
	if persistent {
		props.DeliveryMode = 2
	}
	b := amqp.AppendMethodFrame(nil, channel, &amqp.BasicPublish{RoutingKey: key})
	b = amqp.AppendHeaderFrame(b, channel, amqp.ClassBasic, uint64(len(body)), &props)
	return amqp.AppendBodyFrames(b, channel, []byte(body), 4096)
}

// openRawChannel opens channel id on a raw connection.
func (r *rawClient) openChannel(id uint16) {
	r.t.Helper()
	r.writeRaw(amqp.AppendMethodFrame(nil, id, &amqp.ChannelOpen{}))
	if _, ok := r.expectMethod(id).(*amqp.ChannelOpenOk); !ok {
		r.t.Fatalf("expected channel.open-ok on %d", id)
	}
}

// readUntil reads frames until a method on channel that done accepts,
// passing every frame read before it to seen.
func (r *rawClient) readUntil(channel uint16, done func(amqp.Method) bool, seen func(amqp.Frame)) amqp.Method {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			r.t.Fatalf("read frame: %v", err)
		}
		if f.Type == amqp.FrameMethod && f.Channel == channel {
			m, err := amqp.DecodeMethod(f.Payload)
			if err != nil {
				r.t.Fatalf("decode: %v", err)
			}
			if done(m) {
				return m
			}
		}
		if seen != nil {
			seen(f)
		}
	}
}

// TestCloseOkLeavesTheSocketToTheClient: after connection.close-ok the
// broker discards whatever the client still sends and waits for the client
// to close the TCP connection; it neither closes first nor resets it.
func TestCloseOkLeavesTheSocketToTheClient(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		r := dialRaw(t, b.Addr, 131072, 0, 2047)
		r.openChannel(1)
		q := b.unique("closing")
		// The client was publishing when it closed: publishes, the close,
		// and publishes it had queued behind the close, in one write.
		var burst []byte
		for i := 0; i < 20; i++ {
			burst = append(burst, publishFrames(1, q, false, "before")...)
		}
		burst = amqp.AppendMethodFrame(burst, 0, &amqp.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
		for i := 0; i < 20; i++ {
			burst = append(burst, publishFrames(1, q, false, "behind")...)
		}
		r.writeRaw(burst)
		r.readUntil(0, func(m amqp.Method) bool { _, ok := m.(*amqp.ConnectionCloseOk); return ok }, nil)

		// More frames after close-ok are discarded, not answered with a reset.
		r.writeRaw(publishFrames(1, q, false, "after"))
		r.writeRaw(amqp.AppendHeartbeat(nil))

		// The broker leaves the socket open for the client to close
		// (asserting that nothing happens: a short wait).
		r.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		var one [1]byte
		n, err := r.nc.Read(one[:])
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("after close-ok the broker sent %d bytes or closed the socket first: %v", n, err)
		}
		// The client closes its side; then the broker closes its own
		// (RabbitMQ, whose sockets linger 0, with a reset the client no
		// longer minds; Warren with a FIN).
		if err := r.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err = r.nc.Read(one[:])
		if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the client's FIN: read %d bytes, %v; want the broker to close", n, err)
		}
		t.Logf("after the client's FIN the broker closed: %v", err)
	})
}

// TestNothingFollowsChannelCloseOk: once channel.close-ok is sent, nothing
// more goes out on that channel, not even the confirms of publishes that
// preceded the close; a client that reopens the channel number at once
// sees only its new channel's frames.
func TestNothingFollowsChannelCloseOk(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		q := b.unique("confirms")
		r := dialRaw(t, b.Addr, 131072, 0, 2047)
		r.openChannel(1)
		r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: q, Durable: true}))
		r.expectMethod(1)
		b.cleanupQueue(q)
		r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ConfirmSelect{}))
		r.expectMethod(1)

		// Publishes, transient (confirmed at once) and persistent
		// (confirmed after a disk write), and the channel's close, in one
		// write.
		var burst []byte
		for i := 0; i < 200; i++ {
			burst = append(burst, publishFrames(1, q, i%2 == 1, "message")...)
		}
		burst = amqp.AppendMethodFrame(burst, 1, &amqp.ChannelClose{ReplyCode: 200, ReplyText: "done"})
		r.writeRaw(burst)
		acked := 0
		r.readUntil(1, func(m amqp.Method) bool {
			if a, ok := m.(*amqp.BasicAck); ok {
				acked = int(a.DeliveryTag)
			}
			_, ok := m.(*amqp.ChannelCloseOk)
			return ok
		}, nil)
		t.Logf("%d of 200 publishes confirmed before close-ok", acked)

		// The same channel number again: nothing but its own replies
		// arrive on it, while a publish on another channel is confirmed
		// (after the disk writes of the publishes before the close).
		stray := func(f amqp.Frame) {
			if f.Channel == 1 {
				m, _ := amqp.DecodeMethod(f.Payload)
				t.Fatalf("after channel.close-ok: frame type %d on channel 1 (%#v)", f.Type, m)
			}
		}
		is := func(want amqp.Method) func(amqp.Method) bool {
			return func(m amqp.Method) bool { return m.Name() == want.Name() }
		}
		r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
		r.readUntil(1, is(&amqp.ChannelOpenOk{}), stray)
		r.writeRaw(amqp.AppendMethodFrame(nil, 2, &amqp.ChannelOpen{}))
		r.readUntil(2, is(&amqp.ChannelOpenOk{}), stray)
		r.writeRaw(amqp.AppendMethodFrame(nil, 2, &amqp.ConfirmSelect{}))
		r.readUntil(2, is(&amqp.ConfirmSelectOk{}), stray)
		r.writeRaw(publishFrames(2, q, true, "after"))
		r.readUntil(2, is(&amqp.BasicAck{}), stray)
		r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: q, Passive: true}))
		r.readUntil(1, is(&amqp.QueueDeclareOk{}), stray)
	})
}

// TestHeartbeatsGoOutAtHalfTheInterval: an idle connection gets a
// heartbeat every half of the negotiated interval, so that a client that
// drops the connection after one interval of silence never races the
// broker.
func TestHeartbeatsGoOutAtHalfTheInterval(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		const interval = 2 * time.Second
		r := dialRaw(t, b.Addr, 131072, uint16(interval/time.Second), 2047)
		last := time.Now()
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := 0; i < 3; i++ {
			f, err := r.fr.ReadFrame()
			if err != nil {
				t.Fatalf("heartbeat %d: %v", i, err)
			}
			if f.Type != amqp.FrameHeartbeat {
				t.Fatalf("frame type %d on an idle connection", f.Type)
			}
			gap := time.Since(last)
			last = time.Now()
			t.Logf("heartbeat %d after %v", i, gap)
			if gap > 3*interval/4 {
				t.Fatalf("heartbeat %d came %v after the previous one, want about %v", i, gap, interval/2)
			}
		}
	})
}

// startHandshake connects, sends the protocol header, reads
// connection.start and returns the client with the start-ok it should send.
func startHandshake(t *testing.T, addr string) (*rawClient, *amqp.ConnectionStartOk) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawClient{t: t, nc: nc, fr: amqp.NewFrameReader(nc, 64<<10)}
	r.writeRaw(amqp.ProtocolHeader)
	if _, ok := r.expectMethod(0).(*amqp.ConnectionStart); !ok {
		t.Fatal("expected connection.start")
	}
	return r, &amqp.ConnectionStartOk{
		ClientProperties: amqp.Table{"capabilities": amqp.Table{"authentication_failure_close": true}},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	}
}

// expectSilentClose waits (up to 10 s) for the broker to close the
// connection without sending anything: RabbitMQ's answer to an error
// before tune-ok, after a delay of a few seconds.
func (r *rawClient) expectSilentClose() {
	r.t.Helper()
	start := time.Now()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [512]byte
	n, err := r.nc.Read(buf[:])
	if n > 0 {
		r.t.Fatalf("the broker sent %q, want nothing before it closes", buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("the broker did not close the connection within 10 s")
	}
	r.t.Logf("closed without a word after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestOversizedFrameBeforeTuneOkIsRefused: until tune-ok has set the
// frame-max, frames may not exceed the spec's minimum of 4096 bytes (a
// start-ok may carry 4096 bytes of payload: 4104 in all, as RabbitMQ
// takes it); a larger one is a frame error, which before tune-ok closes
// the connection without a connection.close (after a delay, as every
// error then does).
func TestOversizedFrameBeforeTuneOkIsRefused(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		// startOk returns a start-ok frame of exactly size bytes.
		startOk := func(so *amqp.ConnectionStartOk, size int) []byte {
			so.ClientProperties["pad"] = ""
			pad := size - len(amqp.AppendMethodFrame(nil, 0, so))
			so.ClientProperties["pad"] = string(make([]byte, pad))
			return amqp.AppendMethodFrame(nil, 0, so)
		}
		t.Run("start-ok of 4104 bytes", func(t *testing.T) {
			t.Parallel()
			r, so := startHandshake(t, b.Addr)
			r.writeRaw(startOk(so, 4104))
			if _, ok := r.expectMethod(0).(*amqp.ConnectionTune); !ok {
				t.Fatal("expected connection.tune")
			}
		})
		t.Run("start-ok of 4105 bytes", func(t *testing.T) {
			t.Parallel()
			r, so := startHandshake(t, b.Addr)
			r.writeRaw(startOk(so, 4105))
			r.expectSilentClose()
		})
		t.Run("body frame of 4097 bytes before tune-ok", func(t *testing.T) {
			t.Parallel()
			r, so := startHandshake(t, b.Addr)
			r.writeRaw(amqp.AppendMethodFrame(nil, 0, so))
			if _, ok := r.expectMethod(0).(*amqp.ConnectionTune); !ok {
				t.Fatal("expected connection.tune")
			}
			r.writeRaw(amqp.AppendFrame(nil, amqp.FrameBody, 1, make([]byte, 4089)))
			r.expectSilentClose()
		})
	})
}

// TestUnexpectedFramesCloseWith505: a content header of another class
// than its method's, and a heartbeat on a channel other than 0, are
// unexpected frames (505), not frame errors (501).
func TestUnexpectedFramesCloseWith505(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		t.Run("content header of another class", func(t *testing.T) {
			r := dialRaw(t, b.Addr, 131072, 0, 2047)
			r.openChannel(1)
			f := amqp.AppendMethodFrame(nil, 1, &amqp.BasicPublish{RoutingKey: "nowhere"})
			f = amqp.AppendHeaderFrame(f, 1, 50, 1, &amqp.Properties{})
			r.writeRaw(f)
			if code := r.expectConnectionClose(); code != amqp.UnexpectedFrame {
				t.Fatalf("connection.close code %d, want 505", code)
			}
		})
		t.Run("heartbeat on channel 1", func(t *testing.T) {
			r := dialRaw(t, b.Addr, 131072, 0, 2047)
			r.openChannel(1)
			hb := amqp.AppendHeartbeat(nil)
			hb[2] = 1 // channel 1
			r.writeRaw(hb)
			if code := r.expectConnectionClose(); code != amqp.UnexpectedFrame {
				t.Fatalf("connection.close code %d, want 505", code)
			}
		})
	})
}
