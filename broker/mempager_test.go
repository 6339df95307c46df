package broker_test

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/queue"
)

// goMemory is what the broker's memory alarm measures in this process.
func goMemory() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// TestMemoryAlarmClearsWithoutAConsumer: a transient backlog let into
// memory while there was room (no consumer) is paged out in the
// background once the memory alarm fires, memory falls back under the
// watermark and the blocked publisher goes on, with no consumer and no
// publish to trigger it. The messages are all still there, in order.
func TestMemoryAlarmClearsWithoutAConsumer(t *testing.T) {
	const n, size = 40000, 1024 // 40 MB of bodies
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.QueuePaging = queue.Paging{MaxMessages: 1000}
		c.MemoryHighWatermark, c.MemoryLimit = 0, 0 // no limit while filling
	}))
	c := dial(t, b.URL)
	blocked := c.NotifyBlocked(make(chan rmq.Blocking, 8))
	ch := openChannel(t, c)
	q := declareQueue(t, ch, nil)
	body := make([]byte, size)
	for i := 0; i < n; i++ {
		body[0] = byte(i)
		publish(t, ch, "", q, rmq.Publishing{Body: body})
	}
	roundTrip(t, ch)
	if p := pagedOut(t, b, q); p != 0 {
		t.Fatalf("%d transient messages paged out without memory pressure", p)
	}
	runtime.GC()
	debug.FreeOSMemory()
	full := goMemory()
	// A watermark the backlog puts the broker over, and that paging it
	// out gets it under.
	limit := full - 20<<20
	b.Server.SetMemoryLimit(limit)
	if got := b.Server.Alarms(); len(got) != 1 || got[0] != "memory" {
		t.Fatalf("alarms = %v with %d MB in use and a limit of %d MB", got, full>>20, limit>>20)
	}
	publish(t, ch, "", q, text("blocked")) // blocks the connection
	start := time.Now()
	select {
	case bl := <-blocked:
		if !bl.Active {
			t.Fatalf("blocking = %+v", bl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.blocked")
	}
	select {
	case bl := <-blocked:
		if bl.Active {
			t.Fatalf("blocking = %+v", bl)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still blocked after 20 s: memory %d MB, limit %d MB, paged out %d",
			goMemory()>>20, limit>>20, pagedOut(t, b, q))
	}
	t.Logf("memory %d MB with the backlog in memory; unblocked %v after the alarm, %d messages paged out, memory %d MB",
		full>>20, time.Since(start).Round(time.Millisecond), pagedOut(t, b, q), goMemory()>>20)
	if b.Server.PagedUnderPressure() == 0 {
		t.Fatal("the background pager paged nothing")
	}
	b.Server.SetMemoryLimit(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cch := openChannel(t, dial(t, b.URL))
	must(t, cch.Qos(1000, 0, false))
	ds, err := cch.ConsumeWithContext(ctx, q, "", true, false, false, false, nil)
	must(t, err)
	for i := 0; i < n; i++ {
		select {
		case d := <-ds:
			if d.Body[0] != byte(i) || len(d.Body) != size {
				t.Fatalf("message %d: first byte %d, size %d", i, d.Body[0], len(d.Body))
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d messages consumed", i, n)
		}
	}
}
