package broker_test

import (
	"regexp"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// Routing and message properties as RabbitMQ runs them (issue 15, items
// 14-17). Each test runs against Warren and RabbitMQ.

// TestCCAndBCCMustBeArraysAndApplyAtEveryExchange: a CC or BCC header
// that is not an array closes the channel with 406 and routes nothing;
// the routing key and the CC and BCC keys apply together at every
// exchange along exchange-to-exchange bindings; an exchange none of whose
// bindings match any key passes the message to its alternate exchange,
// one with a matching binding does not, even when nothing lies behind it.
func TestCCAndBCCMustBeArraysAndApplyAtEveryExchange(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		conn := b.dial()
		ch := openChannel(t, conn)
		q := b.queue(ch, "cc", nil)
		for _, bad := range []any{int32(0), "k1", nil, rmq.Table{"a": "b"}, []byte(q)} {
			for _, h := range []string{"CC", "BCC"} {
				pch := openChannel(t, conn)
				expectChannelClosed(t, pch, 406, func() {
					publish(t, pch, "", q, rmq.Publishing{Headers: rmq.Table{h: bad}, Body: []byte("bad")})
				})
			}
		}
		// Elements of the array that are not strings are ignored.
		publish(t, ch, "", "nowhere", rmq.Publishing{Headers: rmq.Table{"CC": []any{int32(1), q}}, Body: []byte("cc")})
		if body, ok := getBody(t, ch, q); !ok || body != "cc" {
			t.Fatalf("CC [1, %s]: got %q, %v", q, body, ok)
		}
		if body, ok := getBody(t, ch, q); ok {
			t.Fatalf("a refused publish was routed: %q", body)
		}

		d := b.exchange(ch, "cc-direct", "direct")
		tp := b.exchange(ch, "cc-topic", "topic")
		must(t, ch.ExchangeBind(tp, "k1", d, false, nil))
		must(t, ch.QueueBind(q, "k2", tp, false, nil))
		publish(t, ch, d, "", rmq.Publishing{Headers: rmq.Table{"CC": []any{"k1"}, "BCC": []any{"k2"}}, Body: []byte("two hops")})
		got, ok, err := ch.Get(q, true)
		must(t, err)
		if !ok || string(got.Body) != "two hops" {
			t.Fatalf("routing key \"\", CC [k1], BCC [k2] through %s and %s: got %q, %v", d, tp, got.Body, ok)
		}
		if _, has := got.Headers["BCC"]; has {
			t.Fatalf("BCC delivered: %v", got.Headers)
		}

		// Alternate exchanges: taken only where no binding matched.
		aeq := b.queue(ch, "cc-ae", nil)
		ae := b.exchange(ch, "cc-ae", "fanout")
		must(t, ch.QueueBind(aeq, "", ae, false, nil))
		x := b.unique("cc-x")
		must(t, ch.ExchangeDeclare(x, "direct", false, false, false, false, rmq.Table{"alternate-exchange": ae}))
		b.cleanupExchange(x)
		empty := b.exchange(ch, "cc-empty", "fanout")
		must(t, ch.ExchangeBind(empty, "k", x, false, nil))
		publish(t, ch, x, "k", text("to an empty exchange"))
		publish(t, ch, x, "other", rmq.Publishing{Headers: rmq.Table{"CC": []any{"k"}}, Body: []byte("CC to an empty exchange")})
		publish(t, ch, x, "other", text("unroutable"))
		if got := drainBodies(t, ch, aeq); len(got) != 1 || got[0] != "unroutable" {
			t.Fatalf("the alternate exchange's queue got %v, want [unroutable]", got)
		}
	})
}

// TestImpersonatorMayPublishAnotherUsersUserID: the user_id property must
// name the connection's user (406 otherwise), unless the user has the
// impersonator tag; the property then reaches the consumer as it was.
func TestImpersonatorMayPublishAnotherUsersUserID(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		imp, plain := b.unique("impersonator"), b.unique("plain")
		b.addUser(imp, "secret", "impersonator")
		b.addUser(plain, "secret")
		ch := b.channel()
		q := b.queue(ch, "user-id", nil)

		impCh := openChannel(t, dial(t, b.userURL(imp, "secret")))
		publish(t, impCh, "", q, rmq.Publishing{UserId: "someone-else", Body: []byte("claimed")})
		roundTrip(t, impCh)
		d, ok, err := ch.Get(q, true)
		must(t, err)
		if !ok || d.UserId != "someone-else" {
			t.Fatalf("an impersonator's message: ok %v, user_id %q", ok, d.UserId)
		}

		plainCh := openChannel(t, dial(t, b.userURL(plain, "secret")))
		expectChannelClosed(t, plainCh, 406, func() {
			publish(t, plainCh, "", q, rmq.Publishing{UserId: "someone-else", Body: []byte("refused")})
		})
		if body, ok := getBody(t, ch, q); ok {
			t.Fatalf("a refused user_id was delivered: %q", body)
		}
	})
}

// TestExpiredMessageBehindTheHeadIsNeverDelivered: a message that expired
// while it waited behind a message with a later deadline is dead-lettered
// (reason expired), never delivered, once it reaches the head: with
// per-message expirations, and with a queue's x-message-ttl and a message
// expiration together (the lower applies to each message).
func TestExpiredMessageBehindTheHeadIsNeverDelivered(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		for _, tc := range []struct {
			name  string
			args  rmq.Table
			first string // expiration of A; B's is 100 ms
		}{
			{"per-message", nil, "500"},
			{"queue and message", rmq.Table{"x-message-ttl": int32(500)}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ch := b.channel()
				dlq := b.queue(ch, "expired", nil)
				args := rmq.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
				for k, v := range tc.args {
					args[k] = v
				}
				q := b.queue(ch, "ttl", args)
				publish(t, ch, "", q, rmq.Publishing{Expiration: tc.first, Body: []byte("A")})
				publish(t, ch, "", q, rmq.Publishing{Expiration: "100", Body: []byte("B")})
				publish(t, ch, "", q, rmq.Publishing{Expiration: "60000", Body: []byte("C")})
				roundTrip(t, ch)
				time.Sleep(200 * time.Millisecond) // the scenario: B expires behind A

				dead := consume(t, b.channel(), dlq, true)
				ds := consume(t, ch, q, true)
				if d := receive(t, ds); string(d.Body) != "A" {
					t.Fatalf("first delivery %q, want A", d.Body)
				}
				if d := receive(t, ds); string(d.Body) != "C" {
					t.Fatalf("second delivery %q, want C (B expired behind A)", d.Body)
				}
				d := receive(t, dead)
				if x := deaths(t, d); string(d.Body) != "B" || x[0]["reason"] != "expired" {
					t.Fatalf("dead-lettered %q with %v, want B expired", d.Body, x)
				}
			})
		}
	})
}

// TestPolicyAndArgumentTogetherTheLowerApplies: when a queue has both an
// argument and a policy for max-length, max-length-bytes, message-ttl or
// expires, the lower value applies; clearing the policy leaves the
// argument in force.
func TestPolicyAndArgumentTogetherTheLowerApplies(t *testing.T) {
	onBothBrokers(t, func(t *testing.T, b *compatBroker) {
		ch := b.channel()
		base := b.unique("policy")
		declare := func(suffix string, args rmq.Table) string {
			name := base + "-" + suffix
			_, err := ch.QueueDeclare(name, false, false, false, false, args)
			must(t, err)
			b.cleanupQueue(name)
			return name
		}
		dlq := b.queue(ch, "policy-dead", nil)
		qa := declare("a", rmq.Table{"x-max-length": int32(5)})
		qb := declare("b", rmq.Table{"x-max-length-bytes": int32(5)})
		qd := declare("d", rmq.Table{"x-message-ttl": int32(60000), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
		qc := declare("c", rmq.Table{"x-expires": int32(60000)})
		b.setPolicy(base+"-limits", "^"+regexp.QuoteMeta(base)+"-[abd]$",
			map[string]any{"max-length": 2.0, "max-length-bytes": 100.0, "message-ttl": 100.0})
		b.setPolicy(base+"-expires", "^"+regexp.QuoteMeta(base)+"-c$", map[string]any{"expires": 500.0})

		ready := func(q string) int {
			st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			must(t, err)
			return st.Messages
		}
		publishN(t, ch, qa, "1", "2", "3", "4", "5")
		if n := ready(qa); n != 2 {
			t.Errorf("x-max-length 5 under a policy of 2: %d ready, want 2", n)
		}
		publishN(t, ch, qb, "1111", "2222", "3333")
		if n := ready(qb); n != 1 {
			t.Errorf("x-max-length-bytes 5 under a policy of 100: %d ready of 4 bytes, want 1", n)
		}
		dead := consume(t, b.channel(), dlq, true)
		publishN(t, ch, qd, "short-lived")
		if d := receive(t, dead); string(d.Body) != "short-lived" || deaths(t, d)[0]["reason"] != "expired" {
			t.Errorf("x-message-ttl 60 s under a policy of 100 ms: dead-lettered %q, %v", d.Body, deaths(t, d))
		}
		// A passive declare counts as use, so look only after more than
		// the policy's expires of quiet.
		eventually(t, "the queue to expire after the policy's 500 ms", func() bool {
			time.Sleep(700 * time.Millisecond)
			_, err := b.channel().QueueDeclarePassive(qc, false, false, false, false, nil)
			return err != nil
		})

		b.clearPolicy(base + "-limits")
		publishN(t, ch, qa, "6", "7", "8", "9", "10", "11")
		if n := ready(qa); n != 5 {
			t.Errorf("x-max-length 5 after the policy went: %d ready, want 5", n)
		}
	})
}
