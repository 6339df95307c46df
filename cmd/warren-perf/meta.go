package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// The metadata scenario (issue 11): one client declares metaQueues durable
// queues, each bound to a durable topic exchange, one operation at a time,
// while a producer publishes to an unrelated queue that a consumer drains.
const (
	metaID     = "meta"
	metaQueues = 10_000
	// metaPhaseTimeout bounds the declare phase and the delete phase each.
	metaPhaseTimeout = 5 * time.Minute
	// metaWarmUp is how long the producer runs before its idle rate is
	// measured.
	metaWarmUp = time.Second
)

// The metadata scenario's figures.
const (
	metaOpsRate     = "declare+bind ops/s"
	metaPhaseSecs   = "declare+bind s"
	metaPubDuring   = "publish msg/s during declares"
	metaPubSlowest  = "publish msg/s, slowest second of declares"
	metaPubIdle     = "publish msg/s without declares"
	metaDeleteRate  = "queue.delete/s"
	metaDeleteSecs  = "queue.delete s"
	metaQueuesDone  = "queues declared and bound"
	metaQueuesAsked = "queues"
)

// metaColumns are the figures the report's table shows.
var metaColumns = []string{metaOpsRate, metaPhaseSecs, metaPubDuring, metaPubSlowest, metaPubIdle}

// metaTopology is what the declare phase created: the exchange and the
// queues whose declare-ok arrived.
type metaTopology struct {
	exchange string
	queues   []string
}

// metadata measures the metadata scenario with n queues. c is the
// producer's and consumer's configuration (one queue through the default
// exchange); c.Duration is how long the producer's rate is measured with
// no declares running. The declares and binds run over amqp091-go,
// whatever c.Client.
func metadata(b *broker, c config, n int) (map[string]float64, error) {
	c.URI, c.Quiet = b.uri, true
	c.Producers, c.Consumers, c.Queues, c.ExchangeType, c.Prefill = 1, 1, 1, "direct", 0
	admin, err := rmq.Dial(c.URI)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", c.URI, err)
	}
	defer admin.Close()
	topo, err := declare(admin, c)
	if err != nil {
		return nil, err
	}
	defer cleanup(admin, topo)

	ctx, cancel := context.WithCancel(context.Background())
	var cnt counters
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := consume(ctx, c, topo.queues[0], &cnt, newReservoir()); err != nil && ctx.Err() == nil {
			errs <- fmt.Errorf("consumer: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := produce(ctx, c, topo, 0, &cnt, 0); err != nil && ctx.Err() == nil {
			errs <- fmt.Errorf("producer: %w", err)
		}
	}()
	stopTraffic := sync.OnceFunc(func() { cancel(); wg.Wait() })
	defer stopTraffic()

	fig := map[string]float64{metaQueuesAsked: float64(n)}
	if err := waitOrFail(errs, metaWarmUp); err != nil {
		return fig, err
	}
	p0, t0 := cnt.published.Load(), time.Now()
	if err := waitOrFail(errs, c.Duration); err != nil {
		return fig, err
	}
	fig[metaPubIdle] = rate(p0, cnt.published.Load(), time.Since(t0))

	stop := make(chan struct{})
	lowest := lowestRate(cnt.published.Load, stop)
	p0, t0 = cnt.published.Load(), time.Now()
	meta, declared, elapsed, declErr := declareMeta(c.URI, n, metaPhaseTimeout)
	p1, t1 := cnt.published.Load(), time.Now()
	close(stop)
	fig[metaPubDuring] = rate(p0, p1, t1.Sub(t0))
	fig[metaPubSlowest] = <-lowest
	fig[metaQueuesDone] = float64(declared)
	if declErr == nil {
		fig[metaOpsRate] = 2 * float64(n) / elapsed.Seconds()
		fig[metaPhaseSecs] = elapsed.Seconds()
	}
	var trafficErr error
	select {
	case trafficErr = <-errs:
	default:
	}
	stopTraffic()

	deleted, delElapsed, delErr := deleteMeta(c.URI, meta, metaPhaseTimeout)
	if delErr == nil && deleted > 0 {
		fig[metaDeleteRate] = float64(deleted) / delElapsed.Seconds()
		fig[metaDeleteSecs] = delElapsed.Seconds()
	}
	switch {
	case declErr != nil:
		return fig, fmt.Errorf("declare phase: %w", declErr)
	case trafficErr != nil:
		return fig, trafficErr
	case delErr != nil:
		return fig, fmt.Errorf("clean-up: %w", delErr)
	}
	return fig, nil
}

// waitOrFail waits d, or less when the producer or the consumer fails.
func waitOrFail(errs <-chan error, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-errs:
		return err
	case <-t.C:
		return nil
	}
}

// lowestRate reads a count every second until stop is closed, then sends
// the lowest rate of the one-second intervals it saw (0 when none ended).
func lowestRate(read func() uint64, stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		lowest := math.Inf(1)
		prev, prevT := read(), time.Now()
		for {
			select {
			case <-stop:
				if math.IsInf(lowest, 1) {
					lowest = 0
				}
				out <- lowest
				return
			case now := <-tick.C:
				v := read()
				lowest = min(lowest, rate(prev, v, now.Sub(prevT)))
				prev, prevT = v, now
			}
		}
	}()
	return out
}

// metaConn opens a connection and channel whose calls fail once timeout
// has passed: the returned stop closes the connection and cancels that
// deadline. A call that gets no reply is thus bounded in time too.
func metaConn(uri string, timeout time.Duration) (*rmq.Channel, func(), error) {
	conn, ch, err := dialChannel(uri, "")
	if err != nil {
		return nil, nil, err
	}
	t := time.AfterFunc(timeout, func() { conn.Close() })
	return ch, func() { t.Stop(); conn.Close() }, nil
}

// declareMeta declares a durable topic exchange, then n durable queues
// one after another, each followed by a queue.bind to the exchange with
// routing key k.<i>, waiting for every reply. It returns what it created
// (also on error, for deleteMeta), how many queues were declared and
// bound, and how long the queues and bindings took.
func declareMeta(uri string, n int, timeout time.Duration) (metaTopology, int, time.Duration, error) {
	id := randomID()
	var t metaTopology
	ch, stop, err := metaConn(uri, timeout)
	if err != nil {
		return t, 0, 0, err
	}
	defer stop()
	ex := "warren-perf-meta-" + id
	if err := ch.ExchangeDeclare(ex, "topic", true, false, false, false, nil); err != nil {
		return t, 0, 0, fmt.Errorf("declare exchange: %w", err)
	}
	t.exchange = ex
	start := time.Now()
	for i := 0; i < n; i++ {
		if time.Since(start) > timeout {
			return t, i, time.Since(start), fmt.Errorf("%d of %d queues in %s", i, n, timeout)
		}
		name := fmt.Sprintf("warren-perf-meta-%s-%d", id, i)
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			return t, i, time.Since(start), fmt.Errorf("declare queue %d: %w", i, err)
		}
		t.queues = append(t.queues, name)
		if err := ch.QueueBind(name, fmt.Sprintf("k.%d", i), ex, false, nil); err != nil {
			return t, i, time.Since(start), fmt.Errorf("bind queue %d: %w", i, err)
		}
	}
	return t, n, time.Since(start), nil
}

// deleteMeta deletes the queues, then the exchange, of t, one after
// another. It returns how many queues it deleted and how long they took.
func deleteMeta(uri string, t metaTopology, timeout time.Duration) (int, time.Duration, error) {
	if t.exchange == "" && len(t.queues) == 0 {
		return 0, 0, nil
	}
	ch, stop, err := metaConn(uri, timeout)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	start := time.Now()
	for i, q := range t.queues {
		if time.Since(start) > timeout {
			return i, time.Since(start), fmt.Errorf("%d of %d queues deleted in %s", i, len(t.queues), timeout)
		}
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return i, time.Since(start), fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	elapsed := time.Since(start)
	if t.exchange != "" {
		if err := ch.ExchangeDelete(t.exchange, false, false); err != nil {
			return len(t.queues), elapsed, fmt.Errorf("delete exchange %s: %w", t.exchange, err)
		}
	}
	return len(t.queues), elapsed, nil
}
