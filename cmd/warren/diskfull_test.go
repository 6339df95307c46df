package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/testfs"
)

// publishUntilStalled publishes persistent 4 KiB messages with confirms to
// q from several connections at full speed until none is confirmed for
// stall (the disk alarm blocked them) or limit passes. It returns how
// many were confirmed and nacked; the publishers' sockets are closed.
func publishUntilStalled(t *testing.T, url, q string, stall, limit time.Duration) (acked, nacked int64) {
	t.Helper()
	var a, n atomic.Int64
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var socks []net.Conn // blocked clients cannot close politely: the broker does not read them
	for w := 0; w < 3; w++ {
		c, err := rmq.DialConfig(url, rmq.Config{Dial: func(network, addr string) (net.Conn, error) {
			nc, err := net.DialTimeout(network, addr, 5*time.Second)
			if err == nil {
				socks = append(socks, nc)
			}
			return nc, err
		}})
		if err != nil {
			t.Fatal(err)
		}
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, 4096)
			var window []*rmq.DeferredConfirmation
			for ctx.Err() == nil {
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false,
					rmq.Publishing{DeliveryMode: rmq.Persistent, Body: body})
				if err != nil {
					return
				}
				window = append(window, dc)
				if len(window) < 200 {
					continue
				}
				for _, dc := range window {
					ok, err := dc.WaitContext(ctx)
					if err != nil {
						return
					}
					if ok {
						a.Add(1)
					} else {
						n.Add(1)
					}
					last.Store(time.Now().UnixNano())
				}
				window = window[:0]
			}
		}()
	}
	deadline := time.Now().Add(limit)
	for time.Since(time.Unix(0, last.Load())) < stall && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	for _, nc := range socks {
		nc.Close()
	}
	wg.Wait()
	return a.Load(), n.Load()
}

// drain consumes q until it has received want messages, or fails.
func drain(t *testing.T, url, q string, want int64) {
	t.Helper()
	c, ch := dialChannel(t, url)
	defer c.Close()
	if err := ch.Qos(500, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for got := int64(0); got < want; got++ {
		select {
		case d := <-ds:
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("drained %d of %d messages, then nothing for 15 s", got, want)
		}
	}
	if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
}

// queueDepth returns the ready messages of q.
func queueDepth(t *testing.T, url, q string) int64 {
	t.Helper()
	c, ch := dialChannel(t, url)
	defer c.Close()
	st, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return int64(st.Messages)
}

// TestDiskFullNeverKillsTheBroker: the data dir is on a 64 MiB file
// system and persistent 4 KiB messages are published with confirms at
// full speed (the broker died of SIGBUS before). The broker blocks the
// publishers and stays up, with every confirmed message stored. Killed
// and restarted on a disk that something else then filled completely, it
// starts, consumers drain the queue, and the drained space comes back
// within seconds (value-log GC runs while space is low), so publishing
// works again on that disk.
func TestDiskFullNeverKillsTheBroker(t *testing.T) {
	fs := testfs.Small(t, 64<<20)
	dir := filepath.Join(fs, "data")
	p := startProcess(t, dir, "--disk-free-limit", fmt.Sprint(10<<20))
	c, ch := dialChannel(t, p.URL())
	if _, err := ch.QueueDeclare("fill", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	acked, nacked := publishUntilStalled(t, p.URL(), "fill", 3*time.Second, 60*time.Second)
	t.Logf("published until blocked: %d confirmed, %d nacked", acked, nacked)
	select {
	case err := <-p.exited:
		t.Fatalf("the broker died: %v\n%s", err, p.logText())
	default:
	}
	if acked == 0 {
		t.Fatal("nothing was confirmed")
	}
	depth := queueDepth(t, p.URL(), "fill")
	if depth < acked {
		t.Fatalf("the queue holds %d messages, %d were confirmed", depth, acked)
	}

	p.kill()
	filler := testfs.Fill(t, fs)
	p = startProcess(t, dir, "--disk-free-limit", fmt.Sprint(10<<20))
	if got := queueDepth(t, p.URL(), "fill"); got < acked {
		t.Fatalf("after the restart the queue holds %d messages, %d were confirmed", got, acked)
	}
	drain(t, p.URL(), "fill", acked)
	defer os.Remove(filler)
	// The space of the drained messages comes back (the filler stays),
	// the alarm clears and a publisher gets through.
	c, ch = dialChannel(t, p.URL())
	defer c.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for nacks := 0; ; nacks++ { // a publisher retries what was nacked
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "fill", false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte("after the drain")})
		if err != nil {
			t.Fatal(err)
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			t.Fatalf("publish after the drain: %v (%d nacks before)\n%s", err, nacks, p.logText())
		}
		if ok {
			t.Logf("a publish after the drain was confirmed %v after it (%d nacks before)", time.Since(start).Round(time.Millisecond), nacks)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}
