package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
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

func TestDrainsAPrefilledQueue(t *testing.T) {
	b := brokertest.Start(t)
	c := config{URI: b.URL, Consumers: 1, Queues: 1, Size: 16, Duration: 30 * time.Second, Prefetch: 1000, MultiAck: 100,
		ExchangeType: "direct", RoutingKey: "perf.key", Prefill: 20_000, Quiet: true}
	start := time.Now()
	s, err := run(context.Background(), c, func(second) {})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Drained || s.Consumed != 20_000 {
		t.Fatalf("drained %v, consumed %d, want all 20000", s.Drained, s.Consumed)
	}
	if s.ConsumeRate <= 0 || s.PrefillRate <= 0 {
		t.Fatalf("drain rate %.0f, prefill rate %.0f", s.ConsumeRate, s.PrefillRate)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("the run did not end when the queue was drained")
	}
}

func TestDrainTargetCountsEveryQueueOfAnExchange(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		queues int
		want   uint64
	}{{"direct", 3, 100}, {"fanout", 3, 300}, {"topic", 2, 200}} {
		c := config{ExchangeType: tc.kind, Queues: tc.queues, Prefill: 100}
		if got := drainTarget(c); got != tc.want {
			t.Errorf("%s with %d queues: target %d, want %d", tc.kind, tc.queues, got, tc.want)
		}
	}
}

func TestPublishCeilingIntoTheSink(t *testing.T) {
	if got := publishCeiling(2*time.Second, clientFast); got <= 0 {
		t.Fatalf("publish ceiling %.0f", got)
	}
}

func TestConsumesFromTheSinkWithinThePrefetch(t *testing.T) {
	if got := consumeCeiling(2*time.Second, clientFast); got <= 0 {
		t.Fatalf("consume ceiling %.0f", got)
	}
	// A consumer that never acks gets its prefetch and no more.
	addr, stop, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	conn, err := rmq.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("q", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		if d := <-ds; d.DeliveryTag != uint64(i) {
			t.Fatalf("delivery %d has tag %d", i, d.DeliveryTag)
		}
	}
	select {
	case d := <-ds:
		t.Fatalf("delivery %d beyond a prefetch of 10", d.DeliveryTag)
	case <-time.After(200 * time.Millisecond): // nothing may come: no event to wait for
	}
	if err := ch.Ack(10, true); err != nil {
		t.Fatal(err)
	}
	if d := <-ds; d.DeliveryTag != 11 {
		t.Fatalf("after the ack came tag %d, want 11", d.DeliveryTag)
	}
}

func TestGoalVerdicts(t *testing.T) {
	tp := func(w, r float64) []map[string]float64 {
		return []map[string]float64{{"consume msg/s": w}, {"consume msg/s": r}}
	}
	for _, tc := range []struct {
		name    string
		id      string
		figures []map[string]float64
		want    string
	}{
		{"a at 2x", "a", tp(200, 100), goalMet},
		{"a below 2x", "a", tp(199, 100), goalMissed},
		{"c at 1.5x", "c", tp(150, 100), goalMet},
		{"c below 1.5x", "c", tp(140, 100), goalMissed},
		{"e without RabbitMQ's figure", "e", tp(200, 0), goalNotMeasured},
		{"f equal p99", "f", []map[string]float64{{"p99 ms": 0.4}, {"p99 ms": 0.4}}, goalMet},
		{"f higher p99", "f", []map[string]float64{{"p99 ms": 0.5}, {"p99 ms": 0.4}}, goalMissed},
		{"g quarter and small", "g", []map[string]float64{{"KiB per conn": 25, "RSS MiB": 40}, {"KiB per conn": 100, "RSS MiB": 230}}, goalMet},
		{"g quarter but 50 MiB", "g", []map[string]float64{{"KiB per conn": 25, "RSS MiB": 50}, {"KiB per conn": 100, "RSS MiB": 230}}, goalMissed},
		{"g small but a third", "g", []map[string]float64{{"KiB per conn": 34, "RSS MiB": 40}, {"KiB per conn": 100, "RSS MiB": 230}}, goalMissed},
		{"h half", "h", []map[string]float64{{"CPU s per 1M msgs": 10}, {"CPU s per 1M msgs": 20}}, goalMet},
		{"h more than half", "h", []map[string]float64{{"CPU s per 1M msgs": 11}, {"CPU s per 1M msgs": 20}}, goalMissed},
	} {
		vs := evaluateGoals([]row{{s: scenario{id: tc.id}, figures: tc.figures}})
		if len(vs) != len(goals) {
			t.Fatalf("%s: %d verdicts for %d goals", tc.name, len(vs), len(goals))
		}
		for _, v := range vs {
			want := goalNotMeasured // goals of scenarios that did not run
			if v.scenario == tc.id {
				want = tc.want
			}
			if v.state != want {
				t.Errorf("%s: goal %q is %s, want %s (%s)", tc.name, v.target, v.state, want, v.measured)
			}
		}
	}
}

func TestReportStatesGoalsAndCeilings(t *testing.T) {
	sc := scenarios(time.Second)
	byID := map[string]scenario{}
	for _, s := range sc {
		byID[s.id] = s
	}
	rows := []row{
		{s: byID["a"], figures: []map[string]float64{{"consume msg/s": 250000, "publish msg/s": 250000}, {"consume msg/s": 80000, "publish msg/s": 80000}}},
		{s: byID["f"], figures: []map[string]float64{{"p50 ms": 0.1, "p99 ms": 0.5}, {"p50 ms": 0.2, "p99 ms": 0.4}}},
		{s: byID["drain"], figures: []map[string]float64{{"consume msg/s": 500000}, {"consume msg/s": 100000}}},
	}
	r := report{brokers: []*broker{{name: "Warren"}, {name: "RabbitMQ"}}, rows: rows, publishCeiling: 400000, consumeCeiling: 1000000, command: "warren-perf matrix"}
	r.goals = evaluateGoals(rows)
	r.profiles = []profile{{goal: r.goals[5].target, kind: "CPU profile", top: "flat flat%"}}
	text := r.render()
	for _, want := range []string{
		"| (a) 1 producer, 1 consumer, 16 B, manual ack, prefetch 1000, multi-ack 100 | consume msg/s | 250000 | 80000 | 3.12 |",
		"publishing, 400000 msg/s",
		"consuming, 1000000 msg/s",
		"at 500000 msg/s from Warren and 100000 from RabbitMQ",
		"| (a) 1 producer, 1 consumer, 16 B, manual ack, prefetch 1000, multi-ack 100 | 62% | 25% |",
		"| (a) consume rate at least 2x RabbitMQ's | 250000 vs 80000 consume msg/s: 3.12x | met |",
		"| (f) p99 latency no higher than RabbitMQ's | 0.5 vs 0.4 p99 ms: 1.25x | missed |",
		"| (b) consume rate at least 2x RabbitMQ's | — | not measured |",
		"1 of 8 goals met.",
		"### (f) p99 latency no higher than RabbitMQ's",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestProcessFiguresOfThisProcess(t *testing.T) {
	if n, err := openFilesLimit(os.Getpid()); err != nil || n <= 0 {
		t.Fatalf("open files limit %d, %v", n, err)
	}
	if k, err := rssKiB(os.Getpid()); err != nil || k <= 0 {
		t.Fatalf("RSS %d KiB, %v", k, err)
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if !slices.Contains(descendants(os.Getpid()), cmd.Process.Pid) {
		t.Fatalf("descendants of this process lack its child %d", cmd.Process.Pid)
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 500000: "500,000", 1234567: "1,234,567"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProfilesAMissedGoal(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool to summarize profiles")
	}
	b := brokertest.Start(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	warren := &broker{name: "Warren", uri: b.URL, pid: os.Getpid(), pprof: strings.TrimPrefix(srv.URL, "http://")}

	var rows []row
	for _, s := range scenarios(2 * time.Second) {
		if s.id == "f" || s.id == "g" {
			rows = append(rows, row{s: s})
		}
	}
	var vs []verdict
	for _, g := range goals {
		state := goalMet
		if g.scenario == "f" || g.scenario == "g" {
			state = goalMissed
		}
		vs = append(vs, verdict{goal: g, state: state})
	}
	ps := profileMissed(warren, vs, rows)
	if len(ps) != 2 {
		t.Fatalf("%d profiles for 2 missed goals", len(ps))
	}
	for _, p := range ps {
		t.Logf("%s:\n%s", p.kind, p.top)
		if !strings.Contains(p.top, "flat%") {
			t.Errorf("%s: %s has no pprof top:\n%s", p.goal, p.kind, p.top)
		}
	}
	if text := renderProfiles(ps); !strings.Contains(text, "### (g) memory per idle connection") {
		t.Errorf("profiles section lacks (g):\n%s", text)
	}
}
