package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// topology is what a run declares and deletes.
type topology struct {
	exchange string // "" for the default exchange
	queues   []string
}

func randomID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// declare creates the run's queues (and exchange).
func declare(conn *rmq.Connection, c config) (topology, error) {
	ch, err := conn.Channel()
	if err != nil {
		return topology{}, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	id := randomID()
	var t topology
	if c.ExchangeType != "direct" {
		t.exchange = "warren-perf-" + id + "-" + c.ExchangeType
		if err := ch.ExchangeDeclare(t.exchange, c.ExchangeType, c.Persistent, false, false, false, nil); err != nil {
			return t, fmt.Errorf("declare exchange: %w", err)
		}
	}
	for i := 0; i < c.Queues; i++ {
		name := fmt.Sprintf("warren-perf-%s-%d", id, i)
		if _, err := ch.QueueDeclare(name, c.Persistent, false, false, false, nil); err != nil {
			return t, fmt.Errorf("declare queue: %w", err)
		}
		if t.exchange != "" {
			if err := ch.QueueBind(name, c.RoutingKey, t.exchange, false, nil); err != nil {
				return t, fmt.Errorf("bind queue: %w", err)
			}
		}
		t.queues = append(t.queues, name)
	}
	return t, nil
}

// cleanup deletes what declare created.
func cleanup(conn *rmq.Connection, t topology) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, q := range t.queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	if t.exchange != "" {
		return ch.ExchangeDelete(t.exchange, false, false)
	}
	return nil
}

// run executes one scenario, calling each with every second's figures.
func run(ctx context.Context, c config, each func(second)) (summary, error) {
	admin, err := rmq.Dial(c.URI)
	if err != nil {
		return summary{}, fmt.Errorf("connect %s: %w", c.URI, err)
	}
	defer admin.Close()
	topo, err := declare(admin, c)
	if err != nil {
		return summary{}, err
	}
	defer cleanup(admin, topo)

	var cnt counters
	if c.Prefill > 0 {
		cnt.target = drainTarget(c)
		cnt.drained = make(chan struct{})
	}
	lat := newReservoir()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, c.Producers+c.Consumers+1)
	var wg sync.WaitGroup

	pc, cc := c, c // the producers' and the consumers' configuration
	if c.PublishURI != "" {
		pc.URI = c.PublishURI
	}
	if c.ConsumeURI != "" {
		cc.URI = c.ConsumeURI
	}
	var sum summary
	if c.Prefill > 0 {
		// Prefill with confirms, so that every message is in its queue
		// before the consumers start and the drain measures delivery only.
		fc := pc
		fc.Rate = 0
		if fc.Confirm == 0 {
			fc.Confirm = 1000
		}
		t0 := time.Now()
		if err := produce(ctx, fc, topo, 0, &cnt, c.Prefill); err != nil {
			return summary{}, fmt.Errorf("prefill: %w", err)
		}
		sum.PrefillRate = float64(c.Prefill) / time.Since(t0).Seconds()
	}
	for i := 0; i < c.Consumers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := consume(ctx, cc, topo.queues[i%len(topo.queues)], &cnt, lat); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("consumer %d: %w", i, err)
			}
		}(i)
	}
	if c.Prefill == 0 {
		for i := 0; i < c.Producers; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := produce(ctx, pc, topo, i, &cnt, 0); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("producer %d: %w", i, err)
				}
			}(i)
		}
	}

	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var seconds []second
	prevPub, prevConf, prevCons, prevT := uint64(0), uint64(0), uint64(0), start
	warmPub, warmCons := uint64(0), uint64(0)
	var warmT time.Time
	var allLat []time.Duration
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errs:
			runErr = err
			break loop
		case <-cnt.drained:
			sum.Drained = true
			break loop
		case now := <-tick.C:
			pub, conf, cons := cnt.published.Load(), cnt.confirmed.Load(), cnt.consumed.Load()
			samples := lat.take()
			s := second{
				Elapsed:     now.Sub(start).Seconds(),
				PublishRate: rate(prevPub, pub, now.Sub(prevT)),
				ConfirmRate: rate(prevConf, conf, now.Sub(prevT)),
				ConsumeRate: rate(prevCons, cons, now.Sub(prevT)),
				P50:         ms(percentile(samples, 50)),
				P95:         ms(percentile(samples, 95)),
				P99:         ms(percentile(samples, 99)),
			}
			each(s)
			seconds = append(seconds, s)
			if len(seconds) == 1 {
				warmPub, warmCons, warmT = pub, cons, now
			} else {
				allLat = append(allLat, samples...)
			}
			prevPub, prevConf, prevCons, prevT = pub, conf, cons, now
			if now.Sub(start) >= c.Duration {
				if c.Prefill == 0 {
					sum.PublishRate = rate(warmPub, pub, now.Sub(warmT))
					sum.ConsumeRate = rate(warmCons, cons, now.Sub(warmT))
				}
				break loop
			}
		}
	}
	cancel()
	wg.Wait()
	sortDurations(allLat)
	sum.Config = c
	sum.P50, sum.P95, sum.P99 = ms(percentile(allLat, 50)), ms(percentile(allLat, 95)), ms(percentile(allLat, 99))
	sum.Published, sum.Consumed = cnt.published.Load(), cnt.consumed.Load()
	if c.Prefill > 0 {
		sum.ConsumeRate = cnt.drainRate()
	}
	return sum, runErr
}

// drainTarget is the number of deliveries that empty the queues after a
// prefill: the producer routes to the first queue directly, or to every
// queue through a fanout or topic exchange (all queues bind with the key).
func drainTarget(c config) uint64 {
	if c.ExchangeType == "direct" {
		return uint64(c.Prefill)
	}
	return uint64(c.Prefill) * uint64(c.Queues)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The clients a run's producers and consumers use: the fast client over
// Warren's codec (the default, also for an empty config.Client), or
// amqp091-go.
const (
	clientFast    = "fast"
	clientAMQP091 = "amqp091"
)

// produce publishes until ctx ends (or limit messages when limit > 0).
func produce(ctx context.Context, c config, t topology, id int, cnt *counters, limit int) error {
	if c.Client != clientAMQP091 {
		return fastProduce(ctx, c, t, id, cnt, limit)
	}
	conn, ch, err := dialChannel(c.URI, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	var window chan struct{}
	if c.Confirm > 0 {
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("confirm.select: %w", err)
		}
		window = make(chan struct{}, c.Confirm)
		confirms := ch.NotifyPublish(make(chan rmq.Confirmation, c.Confirm))
		go func() {
			for range confirms {
				cnt.confirmed.Add(1)
				<-window
			}
		}()
	}
	body := make([]byte, c.Size)
	msg := rmq.Publishing{Body: body}
	if c.Persistent {
		msg.DeliveryMode = rmq.Persistent
	}
	key := t.queues[id%len(t.queues)]
	if t.exchange != "" {
		key = c.RoutingKey
	}
	var interval time.Duration
	if c.Rate > 0 {
		interval = time.Second / time.Duration(c.Rate)
	}
	next := time.Now()
	for n := 0; limit == 0 || n < limit; n++ {
		if ctx.Err() != nil {
			return nil
		}
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
		}
		if window != nil {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		binary.BigEndian.PutUint64(body, uint64(time.Now().UnixNano()))
		if err := ch.PublishWithContext(ctx, t.exchange, key, false, false, msg); err != nil {
			return err
		}
		cnt.published.Add(1)
	}
	if window != nil { // wait for the prefill's confirms
		for i := 0; i < cap(window); i++ {
			window <- struct{}{}
		}
	}
	return nil
}

// consume receives from queue until ctx ends.
func consume(ctx context.Context, c config, queue string, cnt *counters, lat *reservoir) error {
	if c.Client != clientAMQP091 {
		return fastConsume(ctx, c, queue, cnt, lat)
	}
	conn, ch, err := dialChannel(c.URI, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	if !c.AutoAck && c.Prefetch > 0 {
		if err := ch.Qos(c.Prefetch, 0, false); err != nil {
			return fmt.Errorf("qos: %w", err)
		}
	}
	ds, err := ch.Consume(queue, "", c.AutoAck, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-ds:
			if !ok {
				return fmt.Errorf("delivery channel closed")
			}
			n++
			if len(d.Body) >= 8 && (c.Rate > 0 || n%8 == 0) { // at full speed a sample is enough
				sent := int64(binary.BigEndian.Uint64(d.Body))
				lat.add(time.Duration(time.Now().UnixNano() - sent))
			}
			cnt.consume()
			if !c.AutoAck && n%c.MultiAck == 0 {
				if err := d.Ack(c.MultiAck > 1); err != nil {
					return err
				}
			}
		}
	}
}

// dialChannel opens a connection to uri with one channel; role (e.g.
// "producer") prefixes its errors.
func dialChannel(uri, role string) (*rmq.Connection, *rmq.Channel, error) {
	prefix := role
	if prefix != "" {
		prefix += " "
	}
	conn, err := rmq.Dial(uri)
	if err != nil {
		return nil, nil, fmt.Errorf("%sdial: %w", prefix, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%schannel: %w", prefix, err)
	}
	return conn, ch, nil
}
