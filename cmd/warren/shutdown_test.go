package main

import (
	"context"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// TestSigtermDuringMemoryAlarmExits: with publishers blocked by the
// memory alarm (a watermark the broker is always over), SIGTERM still
// closes the clients and exits 0 within the shutdown bound, and a new
// broker opens the data dir at once (the store's lock was released).
func TestSigtermDuringMemoryAlarmExits(t *testing.T) {
	dir := t.TempDir()
	p := startProcess(t, dir, "--memory-high-watermark", "0.000001")
	var closed []chan *rmq.Error
	for i := 0; i < 3; i++ {
		c, err := rmq.Dial(p.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		blocked := c.NotifyBlocked(make(chan rmq.Blocking, 4))
		closed = append(closed, c.NotifyClose(make(chan *rmq.Error, 1)))
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		q, err := ch.QueueDeclare("", false, false, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The alarm is sampled every second: publish until it blocks us.
		deadline := time.Now().Add(10 * time.Second)
	publishing:
		for {
			if err := ch.PublishWithContext(context.Background(), "", q.Name, false, false, rmq.Publishing{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-blocked:
				break publishing
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatal("the memory alarm never blocked the publisher")
			}
		}
	}
	start := time.Now()
	if err := p.stop(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logText())
	}
	if d := time.Since(start); d > 12*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for i, ch := range closed {
		select {
		case e := <-ch:
			if e == nil || e.Code != 320 {
				t.Errorf("client %d closed with %v, want 320 CONNECTION_FORCED", i, e)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("client %d was not closed", i)
		}
	}
	startProcess(t, dir) // fails if the data dir is still locked
}
