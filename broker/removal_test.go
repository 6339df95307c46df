package broker_test

import (
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/store"
)

// storedMessages stops b and counts, per queue, the messages its store
// still holds on disk.
func storedMessages(t *testing.T, b *brokertest.Broker) map[string]int64 {
	t.Helper()
	b.Stop()
	st, err := store.Open(b.DataDir, store.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	qs, err := st.Queues()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for k, s := range qs {
		out[k] = s.Messages
	}
	return out
}

func TestSettledMessagesLeaveTheDisk(t *testing.T) {
	b := brokertest.Start(t)
	conn := dial(t, b.URL)
	ch := openChannel(t, conn)
	for _, q := range []struct {
		name string
		args rmq.Table
	}{
		{"acked", nil}, {"rejected", nil}, {"expired", rmq.Table{"x-message-ttl": int32(0)}},
		{"purged", nil}, {"deleted", nil}, {"kept", nil},
	} {
		_, err := ch.QueueDeclare(q.name, true, false, false, false, q.args)
		must(t, err)
		publishConfirmed(t, conn, q.name, 5, 2)
	}
	for i := 0; i < 5; i++ {
		d, ok, err := ch.Get("acked", false)
		must(t, err)
		if !ok {
			t.Fatal("acked: empty")
		}
		must(t, d.Ack(false))
		if d, ok, err = ch.Get("rejected", false); err != nil || !ok {
			t.Fatalf("rejected: %v %v", ok, err)
		}
		must(t, d.Reject(false))
	}
	_, err := ch.QueuePurge("purged", false)
	must(t, err)
	_, err = ch.QueueDelete("deleted", false, false, false)
	must(t, err)
	roundTrip(t, ch)

	got := storedMessages(t, b)
	for _, q := range []string{"acked", "rejected", "expired", "purged", "deleted"} {
		if n := got["/\x00"+q]; n != 0 {
			t.Errorf("queue %s still has %d messages on disk", q, n)
		}
	}
	if n := got["/\x00kept"]; n != 5 {
		t.Errorf("queue kept has %d messages on disk, want 5", n)
	}
}
