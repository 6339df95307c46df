package broker_test

import (
	"testing"
)

// A consumer that never acks makes its queue's backlog grow; publishers are
// paced but never stopped for good, and nothing is lost.
func TestFlowControlPacesButNeverStopsPublishers(t *testing.T) {
	f := newFixture(t)
	pub := f.ch()
	q := declareQueue(t, pub, nil)
	stuck := f.ch()
	must(t, stuck.Qos(1, 0, false))
	ds, err := stuck.Consume(q, "", false, false, false, false, nil)
	must(t, err)
	const n = 6000 // past the backlog that starts pausing
	for i := 0; i < n; i++ {
		publish(t, pub, "", q, text("m"))
	}
	roundTrip(t, pub)
	receive(t, ds) // the one message prefetch 1 allows
	qi, err := pub.QueueDeclarePassive(q, false, false, false, false, nil)
	must(t, err)
	if qi.Messages != n-1 {
		t.Fatalf("ready = %d, want %d", qi.Messages, n-1)
	}
}
