package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// The tests of this file kill the broker with SIGKILL while it purges or
// deletes a durable queue of persistent messages, restart it on the same
// data dir and count what is left. A purge or delete the broker replied
// to must be there whole after the restart; a delete it had not replied
// to is there whole or not at all. Run 0 kills the broker as soon as the
// reply arrives (the window where the reply ran ahead of the disk);
// later runs kill it at random moments within the operation's measured
// duration, drawn from a seed that is logged and named in failures
// (WARREN_KILL9_SEED replays them).

// killRuns is how many times each test kills the broker.
const killRuns = 3

// bigQueueMessages is the size of the queue purged or deleted.
const bigQueueMessages = 20000

// killSeed returns the seed of a test's random kill points.
func killSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WARREN_KILL9_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WARREN_KILL9_SEED: %v", err)
		}
	}
	t.Logf("kill points from seed %d (WARREN_KILL9_SEED=%d replays them)", seed, seed)
	return seed
}

// bigQueueTemplate returns a stopped broker's data dir holding the
// durable queue "big" with n persistent messages, all confirmed.
func bigQueueTemplate(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	p := startProcess(t, dir)
	c, ch := dialChannel(t, p.URL())
	if _, err := ch.QueueDeclare("big", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ch, "big", n, 200)
	c.Close()
	if err := p.stop(); err != nil {
		t.Fatalf("stop the template's broker: %v", err)
	}
	return dir
}

// publishConfirmed publishes n persistent messages of size bytes to q
// with confirms, waiting for all of them.
func publishConfirmed(t *testing.T, ch *rmq.Channel, q string, n, size int) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, size)
	const window = 2000
	var pending []*rmq.DeferredConfirmation
	ctx := context.Background()
	for i := 0; i < n; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, dc)
		if len(pending) == window || i == n-1 {
			for _, dc := range pending {
				if ok, err := dc.WaitContext(ctx); err != nil || !ok {
					t.Fatalf("publish not confirmed: %v", err)
				}
			}
			pending = pending[:0]
		}
	}
}

// queueOp is a purge or delete under test.
type queueOp struct {
	name string
	do   func(ch *rmq.Channel) error
}

// opOutcome is what became of an operation before the kill.
type opOutcome struct {
	replied bool
	took    time.Duration
}

// killDuringQueueOp starts a broker on a copy of template, runs op on the
// queue "big" and kills the broker delay after sending it (or as soon as
// the reply comes, for a negative delay).
func killDuringQueueOp(t *testing.T, template string, op queueOp, delay time.Duration) (string, opOutcome) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(template)); err != nil {
		t.Fatalf("copy the template data dir: %v", err)
	}
	p := startProcess(t, dir)
	c, ch := dialChannel(t, p.URL())
	defer c.Close()
	q, err := ch.QueueDeclarePassive("big", true, false, false, false, nil)
	if err != nil || q.Messages != bigQueueMessages {
		t.Fatalf("the template's queue: %+v, %v", q, err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- op.do(ch) }()
	var out opOutcome
	if delay < 0 {
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		out = opOutcome{replied: true, took: time.Since(start)}
		p.kill()
		return dir, out
	}
	time.Sleep(delay)
	p.kill()
	if err := <-done; err == nil {
		out = opOutcome{replied: true, took: time.Since(start)} // the reply came before the kill
	}
	return dir, out
}

// messagesAfterRestart starts a broker on dir and returns the messages of
// "big", or -1 when the queue does not exist.
func messagesAfterRestart(t *testing.T, dir string) int {
	t.Helper()
	p := startProcess(t, dir)
	defer p.kill()
	c, ch := dialChannel(t, p.URL())
	defer c.Close()
	q, err := ch.QueueDeclarePassive("big", true, false, false, false, nil)
	var ae *rmq.Error
	if errors.As(err, &ae) && ae.Code == rmq.NotFound {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	// Count by consuming too: the declared count comes from the index.
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("big", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < q.Messages; n++ {
		select {
		case <-ds:
		case <-time.After(10 * time.Second):
			t.Fatalf("queue.declare-ok counts %d messages, but only %d were delivered", q.Messages, n)
		}
	}
	return q.Messages
}

// runQueueOpKills kills the broker during op killRuns times and calls
// check with each outcome and what the restart found.
func runQueueOpKills(t *testing.T, op queueOp, check func(where string, out opOutcome, left int)) {
	if testing.Short() {
		t.Skip("-short")
	}
	template := bigQueueTemplate(t, bigQueueMessages)
	rng := rand.New(rand.NewPCG(killSeed(t), 0))
	var took time.Duration
	for run := range killRuns {
		delay := time.Duration(-1)
		if run > 0 {
			delay = time.Duration(rng.Float64() * float64(took))
		}
		dir, out := killDuringQueueOp(t, template, op, delay)
		if out.replied {
			took = out.took
		}
		left := messagesAfterRestart(t, dir)
		where := fmt.Sprintf("run %d (kill %v after the %s, replied %v after %v)", run, delay, op.name, out.replied, out.took.Round(time.Millisecond))
		if delay < 0 {
			where = fmt.Sprintf("run 0 (kill as the reply to the %s came, after %v)", op.name, out.took.Round(time.Millisecond))
		}
		t.Logf("%s: %d messages left", where, left)
		check(where, out, left)
	}
}

// TestKill9AfterPurgeOkKeepsThePurge: once purge-ok is sent, the purged
// messages never come back.
func TestKill9AfterPurgeOkKeepsThePurge(t *testing.T) {
	op := queueOp{name: "purge", do: func(ch *rmq.Channel) error { _, err := ch.QueuePurge("big", false); return err }}
	runQueueOpKills(t, op, func(where string, out opOutcome, left int) {
		switch {
		case left < 0:
			t.Errorf("%s: the queue is gone", where)
		case out.replied && left != 0:
			t.Errorf("%s: purge-ok was sent, but %d purged messages came back", where, left)
		}
	})
}

// TestKill9DuringQueueDeleteIsAllOrNothing: a queue deleted while the
// broker was killed is whole or gone after the restart, and gone if
// delete-ok was sent.
func TestKill9DuringQueueDeleteIsAllOrNothing(t *testing.T) {
	op := queueOp{name: "delete", do: func(ch *rmq.Channel) error { _, err := ch.QueueDelete("big", false, false, false); return err }}
	runQueueOpKills(t, op, func(where string, out opOutcome, left int) {
		switch {
		case out.replied && left >= 0:
			t.Errorf("%s: delete-ok was sent, but the queue came back with %d messages", where, left)
		case left >= 0 && left != bigQueueMessages:
			t.Errorf("%s: PARTIAL QUEUE: %d of %d messages came back", where, left, bigQueueMessages)
		}
	})
}
