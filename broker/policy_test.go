package broker_test

import (
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

func putPolicy(t *testing.T, f *fixture, p broker.Policy) {
	t.Helper()
	if err := f.b.Server.Vhost("/").PutPolicy(p); err != nil {
		t.Fatalf("put policy %s: %v", p.Name, err)
	}
}

// publishN publishes bodies to the default exchange with key q.
func publishN(t *testing.T, ch *rmq.Channel, q string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		publish(t, ch, "", q, text(b))
	}
	roundTrip(t, ch)
}

func TestPolicyAppliesToExistingAndNewQueues(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	if _, err := ch.QueueDeclare("limited.old", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "limited.old", "a", "b", "c")

	// A lowered max-length applies at once: the excess head goes.
	putPolicy(t, f, broker.Policy{Name: "cap", Pattern: `^limited\.`, ApplyTo: "queues", Definition: map[string]any{"max-length": 2.0}})
	if got := drainBodies(t, ch, "limited.old"); len(got) != 2 || got[0] != "b" {
		t.Fatalf("existing queue under the policy holds %v, want [b c]", got)
	}
	if _, err := ch.QueueDeclare("limited.new", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "limited.new", "1", "2", "3")
	if got := drainBodies(t, ch, "limited.new"); len(got) != 2 || got[0] != "2" {
		t.Fatalf("new queue under the policy holds %v, want [2 3]", got)
	}
	if p := f.b.Server.Vhost("/").Queue("limited.new").Info().Policy; p != "cap" {
		t.Fatalf("queue's policy = %q, want cap", p)
	}
	// A queue the pattern does not match keeps everything.
	if _, err := ch.QueueDeclare("other", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "other", "1", "2", "3")
	if got := drainBodies(t, ch, "other"); len(got) != 3 {
		t.Fatalf("unmatched queue holds %v", got)
	}

	// Deleting the policy removes its effect.
	if ok, err := f.b.Server.Vhost("/").DeletePolicy("cap"); !ok || err != nil {
		t.Fatalf("delete policy: found %v, err %v", ok, err)
	}
	publishN(t, ch, "limited.new", "1", "2", "3")
	if got := drainBodies(t, ch, "limited.new"); len(got) != 3 {
		t.Fatalf("after deleting the policy the queue holds %v, want 3 messages", got)
	}
	if p := f.b.Server.Vhost("/").Queue("limited.new").Info().Policy; p != "" {
		t.Fatalf("queue's policy after delete = %q", p)
	}
}

func TestPolicyPriorityPicksAndTheLowerLimitApplies(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	putPolicy(t, f, broker.Policy{Name: "low", Pattern: ".*", Priority: 1, Definition: map[string]any{"max-length": 1.0}})
	putPolicy(t, f, broker.Policy{Name: "high", Pattern: "^q", Priority: 5, Definition: map[string]any{"max-length": 2.0}})
	if _, err := ch.QueueDeclare("q1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "q1", "a", "b", "c")
	if got := drainBodies(t, ch, "q1"); len(got) != 2 {
		t.Fatalf("the higher-priority policy should cap at 2: %v", got)
	}
	// Of the queue's own x-max-length and the policy's, the lower applies
	// (as in RabbitMQ; see TestPolicyAndArgumentTogetherTheLowerApplies).
	if _, err := ch.QueueDeclare("q2", false, false, false, false, rmq.Table{"x-max-length": int32(3)}); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "q2", "a", "b", "c", "d")
	if got := drainBodies(t, ch, "q2"); len(got) != 2 {
		t.Fatalf("the policy's lower max-length should apply: %v", got)
	}
	if _, err := ch.QueueDeclare("q3", false, false, false, false, rmq.Table{"x-max-length": int32(1)}); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "q3", "a", "b", "c", "d")
	if got := drainBodies(t, ch, "q3"); len(got) != 1 {
		t.Fatalf("the queue's lower x-max-length should apply: %v", got)
	}
	if _, err := ch.QueueDeclare("z", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publishN(t, ch, "z", "a", "b")
	if got := drainBodies(t, ch, "z"); len(got) != 1 {
		t.Fatalf("only the low policy matches z: %v", got)
	}
}

func TestPolicyDeadLetteringAndTTL(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	if _, err := ch.QueueDeclare("dead", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	putPolicy(t, f, broker.Policy{Name: "expire", Pattern: "^work$", ApplyTo: "queues",
		Definition: map[string]any{"message-ttl": 0.0, "dead-letter-exchange": "", "dead-letter-routing-key": "dead"}})
	if _, err := ch.QueueDeclare("work", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("dead", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", "work", text("late"))
	d := receive(t, ds)
	deaths, _ := d.Headers["x-death"].([]any)
	if string(d.Body) != "late" || len(deaths) != 1 || deaths[0].(rmq.Table)["reason"] != "expired" {
		t.Fatalf("dead-lettered %q with x-death %v", d.Body, d.Headers["x-death"])
	}
}

func TestPolicyAlternateExchange(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	must(t, ch.ExchangeDeclare("orders", "direct", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("unrouted", "fanout", false, false, false, false, nil))
	q := declareQueue(t, ch, nil)
	must(t, ch.QueueBind(q, "", "unrouted", false, nil))
	putPolicy(t, f, broker.Policy{Name: "ae", Pattern: "^orders$", ApplyTo: "exchanges", Definition: map[string]any{"alternate-exchange": "unrouted"}})
	publish(t, ch, "orders", "nobody", text("lost?"))
	roundTrip(t, ch)
	if b, ok := getBody(t, ch, q); !ok || b != "lost?" {
		t.Fatalf("alternate exchange from policy: got %q %v", b, ok)
	}
}

func TestPolicyValidation(t *testing.T) {
	f := newFixture(t)
	v := f.b.Server.Vhost("/")
	for _, p := range []broker.Policy{
		{Name: "", Pattern: ".*", Definition: map[string]any{"max-length": 1.0}},
		{Name: "p", Pattern: "(", Definition: map[string]any{"max-length": 1.0}},
		{Name: "p", Pattern: ".*", ApplyTo: "everything", Definition: map[string]any{"max-length": 1.0}},
		{Name: "p", Pattern: ".*", Definition: map[string]any{}},
		{Name: "p", Pattern: ".*", Definition: map[string]any{"no-such-key": 1.0}},
		{Name: "p", Pattern: ".*", Definition: map[string]any{"max-length": -1.0}},
		{Name: "p", Pattern: ".*", Definition: map[string]any{"overflow": "sideways"}},
		{Name: "p", Pattern: ".*", Definition: map[string]any{"message-ttl": "soon"}},
	} {
		if err := v.PutPolicy(p); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
	}
	// Keys of RabbitMQ features Warren lacks are accepted (definitions import).
	if err := v.PutPolicy(broker.Policy{Name: "ha", Pattern: ".*", Definition: map[string]any{"ha-mode": "all"}}); err != nil {
		t.Fatalf("ha-mode policy: %v", err)
	}
}

func TestPolicySurvivesRestart(t *testing.T) {
	f := newFixture(t)
	putPolicy(t, f, broker.Policy{Name: "cap", Pattern: "^d$", Definition: map[string]any{"max-length": 1.0}})
	ch := f.ch()
	if _, err := ch.QueueDeclare("d", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	f.conn.Close()
	f.b.Restart()
	if ps := f.b.Server.Vhost("/").Policies(); len(ps) != 1 || ps[0].Name != "cap" || ps[0].Priority != 0 {
		t.Fatalf("policies after restart = %+v", ps)
	}
	conn := dial(t, f.b.URL)
	ch = openChannel(t, conn)
	publishN(t, ch, "d", "a", "b")
	if got := drainBodies(t, ch, "d"); len(got) != 1 || got[0] != "b" {
		t.Fatalf("restored queue under the restored policy holds %v", got)
	}
}

// TestPolicyExpiresMaxLengthBytesAndOverflow covers the policy keys not
// exercised above: expires, max-length-bytes and overflow.
func TestPolicyExpiresMaxLengthBytesAndOverflow(t *testing.T) {
	f := newFixture(t)
	ch := f.ch()
	putPolicy(t, f, broker.Policy{Name: "exp", Pattern: "^pol\\.exp$", Definition: map[string]any{"expires": 50.0}})
	putPolicy(t, f, broker.Policy{Name: "bytes", Pattern: "^pol\\.bytes$", Definition: map[string]any{"max-length-bytes": 5.0}})
	putPolicy(t, f, broker.Policy{Name: "full", Pattern: "^pol\\.full$", Definition: map[string]any{"max-length": 1.0, "overflow": "reject-publish"}})
	for _, q := range []string{"pol.exp", "pol.bytes", "pol.full"} {
		if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the queue under an expires policy to be deleted", func() bool { return f.b.Server.Vhost("/").Queue("pol.exp") == nil })

	publishN(t, ch, "pol.bytes", "aaa", "bbb", "cc")
	if got := drainBodies(t, ch, "pol.bytes"); len(got) != 2 || got[0] != "bbb" || got[1] != "cc" {
		t.Fatalf("max-length-bytes 5 keeps %v, want [bbb cc]", got)
	}

	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 2))
	publish(t, ch, "", "pol.full", text("in"))
	publish(t, ch, "", "pol.full", text("refused"))
	if a, b := <-confirms, <-confirms; !a.Ack || b.Ack {
		t.Fatalf("confirms %v %v, want ack then nack", a.Ack, b.Ack)
	}
	if got := drainBodies(t, ch, "pol.full"); len(got) != 1 || got[0] != "in" {
		t.Fatalf("reject-publish kept %v", got)
	}
}
