package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/brokertest"
)

func TestParseFastURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want fastURI
	}{
		{"amqp://guest:guest@127.0.0.1:5672/", fastURI{"127.0.0.1:5672", "guest", "guest", "/"}},
		{"amqp://localhost", fastURI{"localhost:5672", "guest", "guest", "/"}},
		{"amqp://u:p%40ss@h:1/vh", fastURI{"h:1", "u", "p@ss", "vh"}},
		{"amqp://u@h/%2f", fastURI{"h:5672", "u", "guest", "/"}},
	} {
		got, err := parseFastURI(tc.uri)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.uri, got, err, tc.want)
		}
	}
	if _, err := parseFastURI("amqps://h/"); err == nil {
		t.Error("amqps accepted")
	}
}

// fastRoundTrip publishes n messages with the fast producer into a fresh
// queue, drains them with the fast consumer and returns the counters and
// the messages left ready in the queue after the consumer closed.
func fastRoundTrip(t *testing.T, url string, c config, n int) (*counters, int) {
	t.Helper()
	c.URI, c.Queues, c.ExchangeType, c.RoutingKey, c.Client = url, 1, "direct", "perf.key", clientFast
	admin, err := rmq.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topo, err := declare(admin, c)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup(admin, topo)

	cnt := &counters{target: uint64(n), drained: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fastProduce(ctx, c, topo, 0, cnt, n); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fastConsume(cctx, c, topo.queues[0], cnt, newReservoir()) }()
	select {
	case <-cnt.drained:
	case err := <-done:
		t.Fatalf("consumer ended after %d deliveries: %v", cnt.consumed.Load(), err)
	case <-ctx.Done():
		t.Fatalf("drained %d of %d", cnt.consumed.Load(), n)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("consumer: %v", err)
	}
	ch, err := admin.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(topo.queues[0], c.Persistent, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cnt, q.Messages
}

func TestFastClientPublishesAndConsumesEveryMessage(t *testing.T) {
	b := brokertest.Start(t)
	const n = 20_000
	for _, tc := range []struct {
		name string
		c    config
	}{
		{"no confirms, multi-ack", config{Size: 16, Prefetch: 1000, MultiAck: 100}},
		{"confirms", config{Size: 16, Confirm: 100, Prefetch: 1000, MultiAck: 1}},
		{"persistent with confirms", config{Size: 1024, Confirm: 1000, Persistent: true, Prefetch: 500, MultiAck: 50}},
		{"autoack", config{Size: 16, AutoAck: true, MultiAck: 1}},
		{"body over frames", config{Size: 300_000, Confirm: 10, Prefetch: 10, MultiAck: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := n
			if tc.c.Size > 100_000 {
				count = 50
			}
			cnt, left := fastRoundTrip(t, b.URL, tc.c, count)
			if got := cnt.published.Load(); got != uint64(count) {
				t.Errorf("published %d, want %d", got, count)
			}
			if tc.c.Confirm > 0 {
				if got := cnt.confirmed.Load(); got != uint64(count) {
					t.Errorf("confirmed %d, want %d", got, count)
				}
			}
			if got := cnt.consumed.Load(); got != uint64(count) {
				t.Errorf("consumed %d, want %d", got, count)
			}
			if left != 0 {
				t.Errorf("%d messages left in the queue: acks were lost", left)
			}
		})
	}
}

func TestFastClientRunsScenariosAgainstWarren(t *testing.T) {
	b := brokertest.Start(t)
	for _, c := range []config{
		{Producers: 1, Consumers: 1, Queues: 1, Size: 16, Prefetch: 1000, MultiAck: 100, ExchangeType: "direct"},
		{Producers: 1, Consumers: 2, Queues: 2, Size: 64, Confirm: 50, Persistent: true, MultiAck: 1, ExchangeType: "fanout"},
		{Producers: 1, Consumers: 1, Queues: 1, Size: 16, Rate: 500, Prefetch: 10, MultiAck: 1, ExchangeType: "topic"},
	} {
		c.URI, c.Duration, c.Quiet, c.RoutingKey, c.Client = b.URL, 2*time.Second, true, "perf.key", clientFast
		s, err := run(context.Background(), c, func(second) {})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if s.Published == 0 || s.Consumed == 0 || s.P50 <= 0 {
			t.Fatalf("%+v: published %d, consumed %d, p50 %.3f ms", c, s.Published, s.Consumed, s.P50)
		}
		if c.Rate > 0 && s.PublishRate > 1.2*float64(c.Rate) {
			t.Fatalf("published %.0f msg/s at --rate %d", s.PublishRate, c.Rate)
		}
	}
}

func TestFastClientReportsChannelErrors(t *testing.T) {
	b := brokertest.Start(t)
	for _, confirm := range []int{0, 10} {
		c := config{URI: b.URL, Size: 16, Confirm: confirm, Client: clientFast}
		topo := topology{exchange: "no-such-exchange", queues: []string{"q"}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := fastProduce(ctx, c, topo, 0, &counters{}, 0)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "channel closed by the broker") || !strings.Contains(err.Error(), "NOT_FOUND") {
			t.Fatalf("confirm %d: publish to a missing exchange: %v", confirm, err)
		}
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
			t.Fatalf("confirm %d: error %v does not carry the *amqp.Error with 404", confirm, err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("confirm %d: the error took %v", confirm, time.Since(start))
		}
	}
	err := fastConsume(context.Background(), config{URI: b.URL, Prefetch: 10, MultiAck: 1, Client: clientFast},
		"no-such-queue", &counters{}, newReservoir())
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("consume from a missing queue: %v", err)
	}
	_, err = dialFast(context.Background(), strings.Replace(b.URL, "guest:guest", "guest:wrong", 1))
	if err == nil || !strings.Contains(err.Error(), "ACCESS_REFUSED") {
		t.Fatalf("wrong password: %v", err)
	}
}

// fakeBroker accepts one connection, reads the protocol header and writes
// script to it, then hangs up after the client's basic.consume or reads
// until the client goes.
func fakeBroker(t *testing.T, script []byte, hangup bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		hdr := make([]byte, 8)
		if _, err := io.ReadFull(nc, hdr); err != nil {
			return
		}
		nc.Write(script)
		if !hangup {
			io.Copy(io.Discard, nc)
			return
		}
		fr := amqp.NewFrameReader(nc, 1<<16)
		for { // hang up once the client has asked to consume
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if class, method, _ := methodID(f.Payload); f.Type == amqp.FrameMethod && class == amqp.ClassBasic && method == 20 {
				return
			}
		}
	}()
	return "amqp://guest:guest@" + ln.Addr().String() + "/"
}

// handshakeFrames is a broker's side of a handshake, up to channel.open-ok.
func handshakeFrames() []byte {
	b := amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStart{VersionMinor: 9, Mechanisms: "PLAIN", Locales: "en_US"})
	b = amqp.AppendMethodFrame(b, 0, &amqp.ConnectionTune{ChannelMax: 10, FrameMax: 4096})
	b = amqp.AppendMethodFrame(b, 0, &amqp.ConnectionOpenOk{})
	b = amqp.AppendMethodFrame(b, fastChannel, &amqp.ChannelOpenOk{})
	return b
}

func TestFastClientRejectsMalformedInput(t *testing.T) {
	deliver := func(b []byte) []byte {
		return amqp.AppendMethodFrame(b, fastChannel, &amqp.BasicDeliver{ConsumerTag: "c", DeliveryTag: 1})
	}
	header := func(b []byte, size uint64) []byte {
		return amqp.AppendHeaderFrame(b, fastChannel, amqp.ClassBasic, size, &amqp.Properties{})
	}
	consumeOK := func() []byte {
		b := handshakeFrames()
		b = amqp.AppendMethodFrame(b, fastChannel, &amqp.BasicQosOk{})
		return amqp.AppendMethodFrame(b, fastChannel, &amqp.BasicConsumeOk{ConsumerTag: "c"})
	}
	for _, tc := range []struct {
		name   string
		script []byte
		want   string
	}{
		{"not AMQP", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), "handshake"},
		{"no PLAIN", amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStart{Mechanisms: "AMQPLAIN"}), "not PLAIN"},
		{"tiny frame-max", amqp.AppendMethodFrame(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionStart{Mechanisms: "PLAIN"}),
			0, &amqp.ConnectionTune{FrameMax: 512}), "frame-max"},
		{"truncated deliver", append(consumeOK(), amqp.AppendFrame(nil, amqp.FrameMethod, fastChannel, []byte{0, 60, 0, 60, 9, 'x'})...), "malformed basic.deliver"},
		{"header without deliver", header(consumeOK(), 16), "content header without"},
		{"body longer than its header", amqp.AppendFrame(header(deliver(consumeOK()), 4), amqp.FrameBody, fastChannel, make([]byte, 8)), "longer than"},
		{"short header", amqp.AppendFrame(deliver(consumeOK()), amqp.FrameHeader, fastChannel, []byte{0, 60}), "too short"},
		{"bad frame end", append(deliver(consumeOK())[:len(deliver(consumeOK()))-1], 0), "frame end"},
		{"unknown method", amqp.AppendFrame(consumeOK(), amqp.FrameMethod, fastChannel, []byte{0, 99, 0, 1}), "unknown method"},
		{"hang-up", consumeOK(), "closed the connection"},
		{"connection.close", amqp.AppendMethodFrame(consumeOK(), 0, &amqp.ConnectionClose{ReplyCode: 320, ReplyText: "CONNECTION_FORCED - bye"}), "CONNECTION_FORCED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeBroker(t, tc.script, tc.name == "hang-up")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- fastConsume(ctx, config{URI: url, Prefetch: 10, MultiAck: 1}, "q", &counters{}, newReservoir())
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(8 * time.Second):
				t.Fatal("the consumer hangs")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one that says %q", err, tc.want)
			}
		})
	}
}

func TestFastProducerWaitsWhileBlocked(t *testing.T) {
	// A broker that blocks the connection right after the handshake and
	// unblocks it after a while: the producer publishes (next to) nothing
	// in between, and resumes after.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const blockedFor = 500 * time.Millisecond
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := io.ReadFull(nc, make([]byte, 8)); err != nil {
			return
		}
		nc.Write(amqp.AppendMethodFrame(handshakeFrames(), 0, &amqp.ConnectionBlocked{Reason: "low on memory"}))
		go io.Copy(io.Discard, nc)
		time.Sleep(blockedFor) // the interval under test: no event to wait for
		nc.Write(amqp.AppendMethodFrame(nil, 0, &amqp.ConnectionUnblocked{}))
		time.Sleep(time.Hour)
	}()
	cnt := &counters{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*blockedFor)
	defer cancel()
	c := config{URI: "amqp://guest:guest@" + ln.Addr().String() + "/", Size: 16}
	done := make(chan error, 1)
	go func() { done <- fastProduce(ctx, c, topology{queues: []string{"q"}}, 0, cnt, 0) }()
	time.Sleep(blockedFor * 4 / 5)
	whileBlocked := cnt.published.Load()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := cnt.published.Load() - whileBlocked
	// The reader may see the block only after the writer's first time
	// slice (about 10 ms of publishing); unblocked, it publishes far more.
	if whileBlocked > 500_000 || after < 2*whileBlocked+10_000 {
		t.Fatalf("published %d while blocked and %d after", whileBlocked, after)
	}
}

func TestFastConfirmTracking(t *testing.T) {
	p := &fastPublisher{conn: &fastConn{}, cnt: &counters{}}
	for _, step := range []struct {
		tag      uint64
		multiple bool
		want     uint64
	}{
		{1, false, 1}, {3, false, 2}, {4, false, 3}, {2, false, 4}, {10, true, 10},
		{7, false, 10}, {12, false, 11}, {13, false, 12}, {11, false, 13}, {20, true, 20},
	} {
		p.confirm(step.tag, step.multiple)
		if got := p.confirmed.Load(); got != step.want {
			t.Fatalf("after ack %d (multiple %v): %d confirmed, want %d", step.tag, step.multiple, got, step.want)
		}
	}
	if got := p.cnt.confirmed.Load(); got != 20 {
		t.Fatalf("counter says %d confirmed", got)
	}
}

// BenchmarkFastPublishIntoSink measures the fast producer's hot path: one
// producer, 16 B messages, no confirms, into the discarding sink.
func BenchmarkFastPublishIntoSink(b *testing.B) {
	addr, stop, err := startSink()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	c := config{URI: "amqp://guest:guest@" + addr + "/", Size: 16}
	b.ReportAllocs()
	b.ResetTimer()
	cnt := &counters{}
	if err := fastProduce(context.Background(), c, topology{queues: []string{"perf"}}, 0, cnt, b.N); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkFastConsumeFromSink measures the fast consumer's hot path: 16 B
// deliveries, prefetch 1000, multi-ack 100, fed by the sink.
func BenchmarkFastConsumeFromSink(b *testing.B) {
	addr, stop, err := startSink()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	c := config{URI: "amqp://guest:guest@" + addr + "/", Size: 16, Prefetch: 1000, MultiAck: 100}
	cnt := &counters{target: uint64(b.N), drained: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() { done <- fastConsume(ctx, c, "perf", cnt, newReservoir()) }()
	select {
	case <-cnt.drained:
	case err := <-done:
		b.Fatal(fmt.Errorf("consumer ended: %w", err))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	cancel()
	<-done
}
