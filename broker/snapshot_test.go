package broker_test

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

// TestMetadataSnapshotRoundTrip exports the metadata of a broker with some
// of everything, installs it into an empty broker, and checks that both
// hold byte for byte the same state, that the second one works with it
// (routing through an exchange-to-exchange binding into a queue), and that
// after a restart it keeps exactly the durable part.
func TestMetadataSnapshotRoundTrip(t *testing.T) {
	a := brokertest.Start(t)
	srv := a.Server
	must(t, srv.PutUser(broker.User{Name: "app", PasswordHash: broker.HashPassword("pw"), Tags: []string{"management"}}))
	if _, err := srv.AddVhost("other"); err != nil {
		t.Fatal(err)
	}
	must(t, srv.SetPermission(broker.Permission{User: "app", Vhost: "other", Configure: "^app", Write: ".*", Read: ".*"}))
	must(t, srv.Vhost("/").PutPolicy(broker.Policy{Name: "ttl", Pattern: "^ttl\\.", ApplyTo: "queues", Priority: 1,
		Definition: map[string]any{"message-ttl": float64(60000)}}))
	ch := openChannel(t, dial(t, a.URL))
	must(t, ch.ExchangeDeclare("front", "topic", true, false, false, false, rmq.Table{"alternate-exchange": "ae"}))
	must(t, ch.ExchangeDeclare("back", "direct", true, false, false, false, nil))
	must(t, ch.ExchangeDeclare("scratch", "fanout", false, true, false, false, nil))
	must(t, ch.ExchangeBind("back", "orders.#", "front", false, nil))
	for _, q := range []struct {
		name    string
		durable bool
		args    rmq.Table
	}{{"ttl.orders", true, rmq.Table{"x-max-length": int32(10)}}, {"scratch.q", false, nil}} {
		_, err := ch.QueueDeclare(q.name, q.durable, false, false, false, q.args)
		must(t, err)
	}
	must(t, ch.QueueBind("ttl.orders", "orders.new", "back", false, nil))
	must(t, ch.QueueBind("scratch.q", "", "scratch", false, nil))

	snap := srv.MetadataSnapshot()
	defsA, err := srv.ExportDefinitions("")
	must(t, err)

	b := brokertest.Start(t)
	must(t, b.Server.InstallMetadataSnapshot(context.Background(), snap))
	if got := b.Server.MetadataSnapshot(); !bytes.Equal(got, snap) {
		t.Fatalf("installed snapshot differs: %d bytes, want %d", len(got), len(snap))
	}
	defsB, err := b.Server.ExportDefinitions("")
	must(t, err)
	if !sameTopology(defsA, defsB) {
		t.Fatalf("definitions differ after install:\n%+v\nwant\n%+v", defsB, defsA)
	}

	// The installed broker routes with it.
	chB := openChannel(t, dial(t, b.URL))
	publish(t, chB, "front", "orders.new", rmq.Publishing{Body: []byte("o1")})
	if body, ok := getBody(t, chB, "ttl.orders"); !ok || body != "o1" {
		t.Fatalf("after install, front -> back -> ttl.orders gave %q, %v", body, ok)
	}
	if q := b.Server.Vhost("/").Queue("ttl.orders"); q == nil || q.Info().Policy != "ttl" {
		t.Fatalf("the policy does not apply to ttl.orders after install")
	}

	// A restart keeps the durable part: the same as the first broker's.
	b.Restart()
	defsR, err := b.Server.ExportDefinitions("")
	must(t, err)
	if !sameTopology(defsA, defsR) {
		t.Fatalf("definitions differ after a restart:\n%+v\nwant\n%+v", defsR, defsA)
	}
	if b.Server.Vhost("/").Queue("scratch.q") != nil || b.Server.Vhost("/").Exchange("scratch") != nil {
		t.Fatal("transient queue or exchange survived the restart")
	}
}

// sameTopology compares what definitions hold, users' password hashes
// included.
func sameTopology(a, b broker.Definitions) bool {
	return reflect.DeepEqual(a.Users, b.Users) && reflect.DeepEqual(a.Vhosts, b.Vhosts) &&
		reflect.DeepEqual(a.Permissions, b.Permissions) && reflect.DeepEqual(a.Policies, b.Policies) &&
		reflect.DeepEqual(a.Exchanges, b.Exchanges) && reflect.DeepEqual(a.Queues, b.Queues) &&
		reflect.DeepEqual(a.Bindings, b.Bindings)
}
