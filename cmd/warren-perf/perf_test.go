package main

import (
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/broker/brokertest"
)

func TestPercentileOfSortedSamples(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("p%.0f = %v, want %v", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("percentile of no samples is not 0")
	}
}

func TestReservoirIsBounded(t *testing.T) {
	r := newReservoir()
	for i := 0; i < 3*reservoirSize; i++ {
		r.add(time.Duration(i))
	}
	if got := len(r.take()); got != reservoirSize {
		t.Fatalf("kept %d samples, want %d", got, reservoirSize)
	}
	if got := len(r.take()); got != 0 {
		t.Fatalf("a new interval starts with %d samples", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, args := range [][]string{{"-s", "4"}, {"-q", "0"}, {"--exchange-type", "bogus"}, {"--multi-ack", "0"}, {"-d", "0s"}} {
		if _, err := parseConfig(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	c, err := parseConfig([]string{"--exchange-type", "fanout", "-q", "10", "-y", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Consumers != 10 {
		t.Fatalf("fanout with 10 queues runs %d consumers, want one per queue", c.Consumers)
	}
}

func TestPublishesIntoTheSink(t *testing.T) {
	addr, stop, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := config{URI: "amqp://guest:guest@" + addr + "/", Producers: 1, Queues: 1, Size: 16, Duration: 2 * time.Second,
		MultiAck: 1, Confirm: 100, ExchangeType: "direct", Quiet: true}
	s, err := run(context.Background(), c, func(second) {})
	if err != nil {
		t.Fatal(err)
	}
	if s.Published == 0 {
		t.Fatal("nothing was published into the sink")
	}
}

func TestRunsAgainstWarren(t *testing.T) {
	b := brokertest.Start(t)
	for _, c := range []config{
		{Producers: 1, Consumers: 1, Queues: 1, Size: 16, Prefetch: 100, MultiAck: 10, ExchangeType: "direct"},
		{Producers: 1, Consumers: 2, Queues: 2, Size: 64, Confirm: 50, Persistent: true, MultiAck: 1, ExchangeType: "fanout"},
	} {
		c.URI, c.Duration, c.Quiet, c.RoutingKey = b.URL, 2*time.Second, true, "perf.key"
		s, err := run(context.Background(), c, func(second) {})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if s.Published == 0 || s.Consumed == 0 {
			t.Fatalf("%+v: published %d, consumed %d", c, s.Published, s.Consumed)
		}
	}
}
