package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// TestKill9LosesNoConfirmedMessage publishes persistent messages with
// confirms from several publishers while a consumer acks some of them,
// kills the broker with SIGKILL at a random moment, restarts it on the same
// data dir and checks: every confirmed message is there exactly once, unless
// it was acked, in which case it may only come back flagged redelivered.
func TestKill9LosesNoConfirmedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for run := 0; run < 3; run++ {
		dir := t.TempDir()
		p := startProcess(t, dir)
		setup, err := rmq.Dial(p.URL())
		if err != nil {
			t.Fatal(err)
		}
		sch, err := setup.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sch.QueueDeclare("crash", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		confirmed := map[string]bool{}
		acked := map[string]bool{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				publishUntilKilled(ctx, p.URL(), w, &mu, confirmed)
			}(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ackUntilKilled(ctx, p.URL(), &mu, acked)
		}()
		time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond) // a random kill point
		p.kill()
		cancel()
		wg.Wait()
		setup.Close()

		p2 := startProcess(t, dir)
		c, err := rmq.Dial(p2.URL())
		if err != nil {
			t.Fatal(err)
		}
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for {
			d, ok, err := ch.Get("crash", true)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			body := string(d.Body)
			seen[body]++
			if acked[body] && !d.Redelivered {
				t.Fatalf("run %d: acked message %s came back as not redelivered", run, body)
			}
		}
		c.Close()
		mu.Lock()
		for body := range confirmed {
			if !acked[body] && seen[body] != 1 {
				t.Fatalf("run %d: confirmed message %s found %d times", run, body, seen[body])
			}
		}
		for body, n := range seen {
			if n > 1 {
				t.Fatalf("run %d: message %s found %d times", run, body, n)
			}
		}
		t.Logf("run %d: %d confirmed, %d acked before the kill; %d recovered", run, len(confirmed), len(acked), len(seen))
		mu.Unlock()
		p2.kill()
	}
}

func publishUntilKilled(ctx context.Context, url string, w int, mu *sync.Mutex, confirmed map[string]bool) {
	c, err := rmq.Dial(url)
	if err != nil {
		return
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return
	}
	if err := ch.Confirm(false); err != nil {
		return
	}
	for i := 0; ctx.Err() == nil; i++ {
		body := fmt.Sprintf("w%d-%d", w, i)
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "crash", false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(body)})
		if err != nil {
			return
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return
		}
		mu.Lock()
		confirmed[body] = true
		mu.Unlock()
	}
}

func ackUntilKilled(ctx context.Context, url string, mu *sync.Mutex, acked map[string]bool) {
	c, err := rmq.Dial(url)
	if err != nil {
		return
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return
	}
	ds, err := ch.Consume("crash", "", false, false, false, false, nil)
	if err != nil {
		return
	}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-ds:
			if !ok {
				return
			}
			if n%3 != 0 { // ack two of three; the rest stay unacked and must come back
				continue
			}
			if d.Ack(false) == nil {
				mu.Lock()
				acked[string(d.Body)] = true // sent; it may or may not have reached the disk
				mu.Unlock()
			}
		}
	}
}

func TestSecondBrokerOnTheSameDataDirFails(t *testing.T) {
	dir := t.TempDir()
	startProcess(t, dir)
	out, err := runBinary("--amqp-listen", freePort(t), "--mgmt-listen", "", "--data-dir", dir)
	if err == nil || !strings.Contains(out, "in use by another Warren") {
		t.Fatalf("second broker: err=%v output:\n%s", err, out)
	}
}
