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
