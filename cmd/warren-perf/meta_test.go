package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/broker/brokertest"
)

// metaScenario returns the matrix's metadata scenario.
func metaScenario(t *testing.T, d time.Duration) scenario {
	t.Helper()
	for _, s := range scenarios(d) {
		if s.id == metaID {
			return s
		}
	}
	t.Fatal("the matrix has no metadata scenario")
	return scenario{}
}

func TestMetadataScenarioReportsEveryFigure(t *testing.T) {
	b := brokertest.Start(t)
	warren := &broker{name: "Warren", uri: b.URL, pid: os.Getpid()}
	fig, err := metadata(warren, metaScenario(t, time.Second).cfg, 200)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(fig)
	for _, col := range []string{metaOpsRate, metaPhaseSecs, metaPubDuring, metaPubIdle, metaDeleteRate, metaDeleteSecs} {
		if fig[col] <= 0 {
			t.Errorf("%s is %v", col, fig[col])
		}
	}
	if fig[metaQueuesDone] != 200 {
		t.Errorf("%v queues declared and bound, want 200", fig[metaQueuesDone])
	}
}

func TestMetadataCleanUpDeletesWhatItDeclared(t *testing.T) {
	b := brokertest.Start(t)
	topo, n, _, err := declareMeta(b.URL, 20, time.Minute)
	if err != nil || n != 20 || len(topo.queues) != 20 {
		t.Fatalf("declared %d (%d names): %v", n, len(topo.queues), err)
	}
	deleted, _, err := deleteMeta(b.URL, topo, time.Minute)
	if err != nil || deleted != 20 {
		t.Fatalf("deleted %d: %v", deleted, err)
	}
	conn, err := rmq.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range topo.queues[:1] {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
		var amqpErr *rmq.Error
		if !errors.As(err, &amqpErr) || amqpErr.Code != rmq.NotFound {
			t.Errorf("queue %s after the clean-up: %v, want not found", q, err)
		}
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	err = ch.ExchangeDeclarePassive(topo.exchange, "topic", true, false, false, false, nil)
	var amqpErr *rmq.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != rmq.NotFound {
		t.Errorf("exchange %s after the clean-up: %v, want not found", topo.exchange, err)
	}
}

func TestMetadataSectionComparesTheBrokers(t *testing.T) {
	s := metaScenario(t, 12*time.Second)
	w := map[string]float64{metaOpsRate: 4000, metaPhaseSecs: 5, metaPubDuring: 50000, metaPubSlowest: 40000, metaPubIdle: 100000,
		metaDeleteRate: 5000, metaDeleteSecs: 2, metaQueuesDone: metaQueues, metaQueuesAsked: metaQueues}
	rb := map[string]float64{metaOpsRate: 2000, metaPhaseSecs: 10, metaPubDuring: 10000, metaPubIdle: 20000,
		metaQueuesDone: 5000, metaQueuesAsked: metaQueues}
	r := report{brokers: []*broker{{name: "Warren"}, {name: "RabbitMQ"}}, rows: []row{{s: s, figures: []map[string]float64{w, rb}}}, command: "warren-perf matrix"}
	if got := r.render(); got != "" {
		t.Errorf("the metadata scenario alone rendered a matrix:\n%s", got)
	}
	text := r.renderMeta()
	for _, want := range []string{
		metaSection.start,
		"## Metadata: 10,000 durable queues bound to a topic exchange",
		"| " + s.title + " | declare+bind ops/s | 4000 | 2000 | 2.00 |",
		"| " + s.title + " | declare+bind s | 5 | 10 | 0.50 |",
		"| " + s.title + " | publish msg/s, slowest second of declares | 40000 | — | — |",
		"for 5s with none running",
		"kept 50% of its rate without them on Warren",
		"RabbitMQ declared and bound only 5,000 of the 10,000 queues.",
		"took 2 s on Warren (5000 queue.delete/s",
		metaSection.end,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metadata section lacks %q:\n%s", want, text)
		}
	}
}
