package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

func dial(t *testing.T, url string) *rmq.Connection {
	t.Helper()
	c, err := rmq.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOpenAndClose100Channels(t *testing.T) {
	b := brokertest.Start(t)
	c := dial(t, b.URL)
	var chans []*rmq.Channel
	for i := 0; i < 100; i++ {
		ch, err := c.Channel()
		if err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		chans = append(chans, ch)
	}
	for i, ch := range chans {
		if err := ch.Close(); err != nil {
			t.Fatalf("close channel %d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close connection: %v", err)
	}
}

func TestServerPropertiesAnnounceCapabilities(t *testing.T) {
	b := brokertest.Start(t)
	c := dial(t, b.URL)
	if c.Properties["product"] != "Warren" {
		t.Errorf("product = %v, want Warren", c.Properties["product"])
	}
	for _, k := range []string{"version", "platform"} {
		if _, ok := c.Properties[k].(string); !ok {
			t.Errorf("server property %q missing", k)
		}
	}
	caps, ok := c.Properties["capabilities"].(rmq.Table)
	if !ok {
		t.Fatalf("capabilities missing: %v", c.Properties)
	}
	for _, k := range []string{"publisher_confirms", "exchange_exchange_bindings", "basic.nack",
		"consumer_cancel_notify", "connection.blocked", "consumer_priorities",
		"authentication_failure_close", "per_consumer_qos", "direct_reply_to"} {
		if caps[k] != true {
			t.Errorf("capability %q = %v, want true", k, caps[k])
		}
	}
}

func TestLoginFailures(t *testing.T) {
	b := brokertest.Start(t)
	cases := []struct {
		name string
		url  string
		code uint16
	}{
		{"wrong password", fmt.Sprintf("amqp://guest:nope@%s/", b.Addr), amqp.AccessRefused},
		{"unknown user", fmt.Sprintf("amqp://bob:bob@%s/", b.Addr), amqp.AccessRefused},
		{"unknown vhost", fmt.Sprintf("amqp://guest:guest@%s/nowhere", b.Addr), amqp.NotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // refused credentials are answered after a delay
			c, err := rmq.Dial(tc.url)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			var ae *rmq.Error
			if !errors.As(err, &ae) || ae.Code != int(tc.code) {
				t.Fatalf("dial error = %v, want AMQP code %d", err, tc.code)
			}
		})
	}
}

// remoteListener makes every accepted connection appear to come from addr.
type remoteListener struct {
	net.Listener
	addr net.Addr
}

type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, l.addr}, nil
}

func TestGuestRefusedFromNonLoopback(t *testing.T) {
	b := brokertest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Server.Serve(remoteListener{ln, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 40000}})
	c, err := rmq.Dial(fmt.Sprintf("amqp://guest:guest@%s/", ln.Addr()))
	if err == nil {
		c.Close()
		t.Fatal("guest logged in from a non-loopback address")
	}
	var ae *rmq.Error
	if !errors.As(err, &ae) || ae.Code != int(amqp.AccessRefused) {
		t.Fatalf("dial error = %v, want 403", err)
	}
}

func TestBadProtocolHeaderGetsOursBack(t *testing.T) {
	b := brokertest.Start(t)
	for _, hdr := range []string{"AMQP\x00\x00\x09\x02", "GET / HTTP/1.1\r\n\r\n", "AMQP\x01\x01\x08\x00"} {
		nc, err := net.Dial("tcp", b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write([]byte(hdr))
		got, err := io.ReadAll(nc)
		nc.Close()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.Equal(got, []byte("AMQP\x00\x00\x09\x01")) {
			t.Errorf("header %q: got %q back, want AMQP 0 0 9 1 then close", hdr, got)
		}
	}
}

func TestProtocolViolationsCloseTheConnection(t *testing.T) {
	b := brokertest.Start(t)
	cases := []struct {
		name string
		send func(r *rawClient)
		code uint16
	}{
		{"frame larger than frame-max", func(r *rawClient) {
			r.writeRaw(amqp.AppendFrame(nil, amqp.FrameBody, 1, make([]byte, 8192)))
		}, amqp.FrameError},
		{"bad frame-end", func(r *rawClient) {
			f := amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{})
			f[len(f)-1] = 0xAB
			r.writeRaw(f)
		}, amqp.FrameError},
		{"method on an unopened channel", func(r *rawClient) {
			r.writeRaw(amqp.AppendMethodFrame(nil, 7, &amqp.QueueDeclare{Queue: "q"}))
		}, amqp.ChannelError},
		{"channel above channel-max", func(r *rawClient) {
			r.writeRaw(amqp.AppendMethodFrame(nil, 100, &amqp.ChannelOpen{}))
		}, amqp.NotAllowed},
		{"content header without publish", func(r *rawClient) {
			r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
			r.expectMethod(1)
			r.writeRaw(amqp.AppendHeaderFrame(nil, 1, amqp.ClassBasic, 0, &amqp.Properties{}))
		}, amqp.UnexpectedFrame},
		{"garbage method arguments", func(r *rawClient) {
			r.writeRaw(amqp.AppendFrame(nil, amqp.FrameMethod, 0, []byte{0, 10, 0, 50, 1}))
		}, amqp.SyntaxError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b.Addr, 4096, 0, 10)
			tc.send(r)
			code := r.expectConnectionClose()
			if code != tc.code {
				t.Fatalf("connection.close code = %d, want %d", code, tc.code)
			}
		})
	}
}

func TestSilentPeerIsDroppedAfterTwoHeartbeats(t *testing.T) {
	b := brokertest.Start(t)
	f := &fixture{t: t, b: b, conn: dial(t, b.URL)}
	work := declareQueue(t, f.ch(), nil)
	publish(t, f.ch(), "", work, text("held"))

	// The silent peer holds an exclusive queue and an unacked delivery.
	r := dialRaw(t, b.Addr, 131072, 1, 0)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.ChannelOpen{}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.QueueDeclare{Queue: "silent-excl", Exclusive: true}))
	r.expectMethod(1)
	r.writeRaw(amqp.AppendMethodFrame(nil, 1, &amqp.BasicConsume{Queue: work}))
	if _, ok := r.expectMethod(1).(*amqp.BasicConsumeOk); !ok {
		t.Fatal("expected basic.consume-ok")
	}
	if _, ok := r.expectMethod(1).(*amqp.BasicDeliver); !ok {
		t.Fatal("expected basic.deliver")
	}
	start := time.Now()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	// Read (and ignore) the server's heartbeats until it drops us.
	for {
		_, err := r.fr.ReadFrame()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("server did not drop a silent client within 10 s")
			}
			break
		}
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("dropped after %v, before two heartbeat intervals", d)
	}
	// Everything it held is released: its exclusive queue is gone and its
	// unacked message is ready again, flagged redelivered.
	waitFor(t, "the dropped connection to be released", func() bool { return b.Server.ConnectionCount() == 1 })
	_, err := f.ch().QueueDeclarePassive("silent-excl", false, false, true, false, nil)
	expectCode(t, err, amqp.NotFound)
	d, ok, err := f.ch().Get(work, true)
	must(t, err)
	if !ok || string(d.Body) != "held" || !d.Redelivered {
		t.Fatalf("after the drop: ok=%v body=%q redelivered=%v", ok, d.Body, d.Redelivered)
	}
}

// TestTuneNegotiation checks what connection.start and connection.tune
// announce and that a tune-ok outside the server's limits closes the
// connection with 530 NOT_ALLOWED.
func TestTuneNegotiation(t *testing.T) {
	b := brokertest.Start(t)
	// handshake runs the handshake up to connection.tune and returns it.
	handshake := func(t *testing.T) (*rawClient, *amqp.ConnectionStart, *amqp.ConnectionTune) {
		nc, err := net.Dial("tcp", b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		r := &rawClient{t: t, nc: nc, fr: amqp.NewFrameReader(nc, 64<<10)}
		r.writeRaw(amqp.ProtocolHeader)
		start, ok := r.expectMethod(0).(*amqp.ConnectionStart)
		if !ok {
			t.Fatal("expected connection.start")
		}
		r.writeRaw(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStartOk{
			Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
		}))
		tune, ok := r.expectMethod(0).(*amqp.ConnectionTune)
		if !ok {
			t.Fatal("expected connection.tune")
		}
		return r, start, tune
	}

	_, start, tune := handshake(t)
	if start.VersionMajor != 0 || start.VersionMinor != 9 || start.Mechanisms != "PLAIN AMQPLAIN" || start.Locales != "en_US" {
		t.Errorf("connection.start = %d-%d mechanisms %q locales %q, want 0-9, \"PLAIN AMQPLAIN\", \"en_US\"",
			start.VersionMajor, start.VersionMinor, start.Mechanisms, start.Locales)
	}
	if tune.ChannelMax != 2047 || tune.FrameMax != 131072 || tune.Heartbeat != 60 {
		t.Errorf("connection.tune = %+v, want channel-max 2047, frame-max 131072, heartbeat 60", tune)
	}

	// A tune-ok out of range closes the connection without a word after
	// a delay, as every error before tune-ok does in RabbitMQ 3.10.
	t.Run("out of range", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ok   amqp.ConnectionTuneOk
		}{
			{"frame-max below 4096", amqp.ConnectionTuneOk{FrameMax: 4095}},
			{"frame-max above ours", amqp.ConnectionTuneOk{FrameMax: 131073}},
			{"channel-max above ours", amqp.ConnectionTuneOk{FrameMax: 131072, ChannelMax: 2048}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r, _, _ := handshake(t)
				r.writeRaw(amqp.AppendMethodFrame(nil, 0, &tc.ok))
				r.expectSilentClose()
			})
		}
	})

	// The lower value wins: a client asking for 4096 may not send more.
	r := dialRaw(t, b.Addr, 4096, 0, 0)
	r.writeRaw(amqp.AppendFrame(nil, amqp.FrameBody, 1, make([]byte, 4096)))
	if code := r.expectConnectionClose(); code != amqp.FrameError {
		t.Fatalf("a frame above the negotiated frame-max: close code %d, want 501", code)
	}
}

func TestServerSendsHeartbeats(t *testing.T) {
	b := brokertest.Start(t)
	r := dialRaw(t, b.Addr, 131072, 1, 0)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.fr.ReadFrame()
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	if f.Type != amqp.FrameHeartbeat {
		t.Fatalf("frame type %d, want heartbeat", f.Type)
	}
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// waitFor polls cond until it holds or the deadline passes; it is used only
// where the condition (goroutines exiting) has no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestThousandConnectionsLeaveNothingBehind(t *testing.T) {
	b := brokertest.Start(t)
	// Warm up: the first connection starts lazily created goroutines.
	c := dial(t, b.URL)
	c.Close()
	waitFor(t, "warm-up connection to go", func() bool { return b.Server.ConnectionCount() == 0 })
	goroutines, fds := runtime.NumGoroutine(), countFDs(t)
	for i := 0; i < 1000; i++ {
		c, err := rmq.Dial(b.URL)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		ch, err := c.Channel()
		if err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
		ch.Close()
		c.Close()
	}
	waitFor(t, "connections to be released", func() bool { return b.Server.ConnectionCount() == 0 })
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= goroutines })
	waitFor(t, "file descriptors to close", func() bool { return countFDs(t) <= fds })
}

func TestShutdownSendsConnectionForced(t *testing.T) {
	b := brokertest.Start(t)
	c := dial(t, b.URL)
	closed := c.NotifyClose(make(chan *rmq.Error, 1))
	b.Stop()
	select {
	case err := <-closed:
		if err == nil || err.Code != int(amqp.ConnectionForced) {
			t.Fatalf("close reason = %v, want 320", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.close on shutdown")
	}
}

func TestRestartKeepsUsersVhostsAndPermissions(t *testing.T) {
	b := brokertest.Start(t)
	must(t, b.Server.PutUser(broker.User{Name: "alice", PasswordHash: broker.HashPassword("secret"), Tags: []string{"monitoring"}}))
	for _, v := range []string{"shop", "gone"} {
		if _, err := b.Server.AddVhost(v); err != nil {
			t.Fatal(err)
		}
	}
	must(t, b.Server.SetPermission(broker.Permission{User: "alice", Vhost: "shop", Configure: "^a", Write: ".*", Read: ".*"}))
	must(t, b.Server.SetPermission(broker.Permission{User: "alice", Vhost: "gone", Configure: ".*", Write: ".*", Read: ".*"}))
	if ok, err := b.Server.DeleteVhost("gone"); !ok || err != nil {
		t.Fatalf("delete vhost: %v %v", ok, err)
	}
	b.Restart()

	c := dial(t, fmt.Sprintf("amqp://alice:secret@%s/shop", b.Addr))
	c.Close()
	if b.Server.Vhost("gone") != nil {
		t.Fatal("a deleted vhost came back")
	}
	u, ok := b.Server.Users().Get("alice")
	if !ok || len(u.Tags) != 1 || u.Tags[0] != "monitoring" {
		t.Fatalf("user after restart = %+v", u)
	}
	if p, ok := b.Server.Users().Permission("alice", "shop"); !ok || p.Configure != "^a" {
		t.Fatalf("permission after restart = %+v", p)
	}
	if _, ok := b.Server.Users().Permission("alice", "gone"); ok {
		t.Fatal("a permission on a deleted vhost came back")
	}
}

func TestBadCredentialsWithoutCapabilityCloseTheSocket(t *testing.T) {
	b := brokertest.Start(t)
	nc, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := &rawClient{t: t, nc: nc, fr: amqp.NewFrameReader(nc, 64<<10)}
	r.writeRaw(amqp.ProtocolHeader)
	r.expectMethod(0)
	r.writeRaw(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStartOk{
		ClientProperties: amqp.Table{"product": "old client"},
		Mechanism:        "PLAIN", Response: "\x00guest\x00wrong", Locale: "en_US",
	}))
	if f, err := r.fr.ReadFrame(); err == nil {
		t.Fatalf("got a frame of type %d, want the socket closed", f.Type)
	}
}
