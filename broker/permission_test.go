package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// TestPermissionsEnforced checks each AMQP operation against the
// permission RabbitMQ requires for it: configure to declare and delete,
// write on the exchange to publish, write on the destination and read on
// the source to bind, read on the queue to consume, get and purge.
func TestPermissionsEnforced(t *testing.T) {
	b := newFixture(t).b
	srv := b.Server
	must(t, srv.PutUser(broker.User{Name: "app", PasswordHash: broker.HashPassword("pw")}))
	must(t, srv.SetPermission(broker.Permission{User: "app", Vhost: "/",
		Configure: `^app\.`, Write: `^(app\..*|amq\.default)$`, Read: `^(app\..*|amq\.topic)$`}))

	// Objects the user may not configure, made by guest.
	admin := openChannel(t, dial(t, b.URL))
	must(t, admin.ExchangeDeclare("sys.events", "topic", false, false, false, false, nil))
	_, err := admin.QueueDeclare("sys.jobs", false, false, false, false, nil)
	must(t, err)
	publish(t, admin, "", "sys.jobs", text("secret"))
	roundTrip(t, admin)

	conn := dial(t, strings.Replace(b.URL, "guest:guest", "app:pw", 1))
	// step runs op on a fresh channel and checks it succeeds or is refused
	// with 403 ACCESS_REFUSED.
	step := func(name string, allowed bool, op func(ch *rmq.Channel) error) {
		t.Helper()
		ch := openChannel(t, conn)
		closed := ch.NotifyClose(make(chan *rmq.Error, 1))
		err := op(ch)
		if err == nil && !allowed {
			// Asynchronous methods (publish) fail on the next round trip,
			// or close the channel before it is sent.
			err = ch.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil)
			var ae *rmq.Error
			if errors.As(err, &ae) && ae.Code == rmq.ChannelError {
				select {
				case e := <-closed:
					err = e
				case <-time.After(5 * time.Second):
				}
			}
		}
		switch {
		case allowed && err != nil:
			t.Errorf("%s: refused (%v), want allowed", name, err)
		case !allowed && err == nil:
			t.Errorf("%s: allowed, want 403", name)
		case !allowed:
			if e := expectCode(t, err, 403); !strings.Contains(e.Reason, "refused for user 'app'") {
				t.Errorf("%s: reason %q", name, e.Reason)
			}
		}
		if err == nil {
			ch.Close()
		}
	}
	declareQ := func(name string) func(*rmq.Channel) error {
		return func(ch *rmq.Channel) error {
			_, err := ch.QueueDeclare(name, false, false, false, false, nil)
			return err
		}
	}
	step("declare own queue", true, declareQ("app.q"))
	step("declare foreign queue", false, declareQ("sys.other"))
	step("declare server-named queue (amq.gen-… must match configure)", false, declareQ(""))
	step("passive declare of a foreign queue", true, func(ch *rmq.Channel) error {
		_, err := ch.QueueDeclarePassive("sys.jobs", false, false, false, false, nil)
		return err
	})
	step("declare own exchange", true, func(ch *rmq.Channel) error {
		return ch.ExchangeDeclare("app.x", "fanout", false, false, false, false, nil)
	})
	step("declare foreign exchange", false, func(ch *rmq.Channel) error {
		return ch.ExchangeDeclare("sys.x", "fanout", false, false, false, false, nil)
	})
	step("publish to own exchange", true, func(ch *rmq.Channel) error {
		return ch.Publish("app.x", "", false, false, text("hi"))
	})
	step("publish to the default exchange (amq.default)", true, func(ch *rmq.Channel) error {
		return ch.Publish("", "app.q", false, false, text("hi"))
	})
	step("publish to a foreign exchange", false, func(ch *rmq.Channel) error {
		return ch.Publish("sys.events", "k", false, false, text("hi"))
	})
	step("bind own queue to a readable exchange", true, func(ch *rmq.Channel) error {
		return ch.QueueBind("app.q", "#", "amq.topic", false, nil)
	})
	step("bind own queue to an unreadable exchange", false, func(ch *rmq.Channel) error {
		return ch.QueueBind("app.q", "#", "sys.events", false, nil)
	})
	step("bind a foreign queue (no write on it)", false, func(ch *rmq.Channel) error {
		return ch.QueueBind("sys.jobs", "#", "amq.topic", false, nil)
	})
	step("bind exchange to exchange: write on destination, read on source", true, func(ch *rmq.Channel) error {
		return ch.ExchangeBind("app.x", "#", "amq.topic", false, nil)
	})
	step("bind exchange to a foreign destination", false, func(ch *rmq.Channel) error {
		return ch.ExchangeBind("sys.events", "#", "amq.topic", false, nil)
	})
	step("consume own queue", true, func(ch *rmq.Channel) error {
		_, err := ch.Consume("app.q", "", true, false, false, false, nil)
		return err
	})
	step("consume a foreign queue", false, func(ch *rmq.Channel) error {
		_, err := ch.Consume("sys.jobs", "", true, false, false, false, nil)
		return err
	})
	step("get from a foreign queue", false, func(ch *rmq.Channel) error {
		_, _, err := ch.Get("sys.jobs", true)
		return err
	})
	step("purge a foreign queue", false, func(ch *rmq.Channel) error {
		_, err := ch.QueuePurge("sys.jobs", false)
		return err
	})
	step("purge own queue", true, func(ch *rmq.Channel) error {
		_, err := ch.QueuePurge("app.q", false)
		return err
	})
	step("delete a foreign queue", false, func(ch *rmq.Channel) error {
		_, err := ch.QueueDelete("sys.jobs", false, false, false)
		return err
	})
	step("delete a foreign exchange", false, func(ch *rmq.Channel) error {
		return ch.ExchangeDelete("sys.events", false, false)
	})
	step("delete own queue", true, func(ch *rmq.Channel) error {
		_, err := ch.QueueDelete("app.q", false, false, false)
		return err
	})
	if n, ok := getBody(t, admin, "sys.jobs"); !ok || n != "secret" {
		t.Fatalf("the foreign queue lost its message: %q %v", n, ok)
	}
}

// TestPermissionChangeAppliesToOpenConnections checks that revoking write
// access refuses the next publish on an open channel.
func TestPermissionChangeAppliesToOpenConnections(t *testing.T) {
	b := newFixture(t).b
	srv := b.Server
	must(t, srv.PutUser(broker.User{Name: "app", PasswordHash: broker.HashPassword("pw")}))
	must(t, srv.SetPermission(broker.Permission{User: "app", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}))
	conn := dial(t, strings.Replace(b.URL, "guest:guest", "app:pw", 1))
	ch := openChannel(t, conn)
	publish(t, ch, "amq.fanout", "", text("ok"))
	roundTrip(t, ch)
	must(t, srv.SetPermission(broker.Permission{User: "app", Vhost: "/", Configure: ".*", Write: "^$", Read: ".*"}))
	expectChannelClosed(t, ch, 403, func() { publish(t, ch, "amq.fanout", "", text("no")) })
}
