package broker_test

import (
	"context"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp"
)

func TestConfirmsAckEveryPublishInOrder(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q, err := ch.QueueDeclare("", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 1000))
	const n = 500
	for i := 0; i < n; i++ {
		mode := uint8(1)
		if i%2 == 0 {
			mode = 2 // persistent: confirmed after the group commit
		}
		must(t, ch.PublishWithContext(context.Background(), "", q.Name, false, false, rmq.Publishing{DeliveryMode: mode, Body: []byte("x")}))
	}
	for i := 1; i <= n; i++ {
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag != uint64(i) {
				t.Fatalf("confirm %d = %+v", i, c)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("confirm %d missing", i)
		}
	}
	qi, err := ch.QueueDeclarePassive(q.Name, true, false, false, false, nil)
	must(t, err)
	if qi.Messages != n {
		t.Fatalf("queue has %d messages, want %d", qi.Messages, n)
	}
}

func TestTransactions(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	q := declareQueue(t, ch, nil)
	must(t, ch.Tx())
	publish(t, ch, "", q, text("rolled back"))
	must(t, ch.TxRollback())
	publish(t, ch, "", q, text("committed"))
	roundTrip(t, ch)
	if got := drainBodies(t, f.ch(), q); len(got) != 0 {
		t.Fatalf("uncommitted publish visible: %v", got)
	}
	must(t, ch.TxCommit())
	other := f.ch()
	d, ok, err := other.Get(q, false)
	must(t, err)
	if !ok || string(d.Body) != "committed" {
		t.Fatalf("after commit got %q ok=%v", d.Body, ok)
	}
	// Acks in a transaction take effect at commit; rollback undoes them.
	publish(t, ch, "", q, text("acked in tx"))
	must(t, ch.TxCommit())
	got, ok, err := ch.Get(q, false)
	must(t, err)
	if !ok {
		t.Fatal("no message")
	}
	must(t, got.Ack(false))
	must(t, ch.TxRollback())
	must(t, ch.Recover(true))
	must(t, ch.TxCommit())
	again, ok, err := ch.Get(q, true)
	must(t, err)
	if !ok || string(again.Body) != "acked in tx" || !again.Redelivered {
		t.Fatalf("rolled-back ack: ok=%v body=%q redelivered=%v", ok, again.Body, again.Redelivered)
	}
}

func TestTxAndConfirmErrors(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name string
		do   func(ch *rmq.Channel) error
	}{
		{"commit without select", func(ch *rmq.Channel) error { return ch.TxCommit() }},
		{"rollback without select", func(ch *rmq.Channel) error { return ch.TxRollback() }},
		{"tx after confirm", func(ch *rmq.Channel) error { must(t, ch.Confirm(false)); return ch.Tx() }},
		{"confirm after tx", func(ch *rmq.Channel) error { must(t, ch.Tx()); return ch.Confirm(false) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectCode(t, tc.do(f.ch()), amqp.PreconditionFailed)
		})
	}
}
