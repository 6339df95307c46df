package queue

import (
	"reflect"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// deathSummary is the (queue, reason, count) of each x-death entry, in order.
func deathSummary(t *testing.T, m *Message) []string {
	t.Helper()
	deaths, ok := m.Properties.Headers["x-death"].([]any)
	if !ok {
		t.Fatalf("x-death is %T, want []any", m.Properties.Headers["x-death"])
	}
	out := make([]string, len(deaths))
	for i, d := range deaths {
		tb := d.(amqp.Table)
		count, ok := tb["count"].(int64)
		if !ok {
			t.Fatalf("x-death[%d] count is %T, want int64", i, tb["count"])
		}
		out[i] = tb["queue"].(string) + "/" + tb["reason"].(string) + "/" + string(rune('0'+count))
	}
	return out
}

func dlxQueue(t *testing.T, name string, dlx string, routingKey *string) *Queue {
	cfg := DefaultConfig(name)
	cfg.DeadLetterExchange, cfg.HasDeadLetterExchange = dlx, true
	if routingKey != nil {
		cfg.DeadLetterRoutingKey, cfg.HasDeadLetterRoutingKey = *routingKey, true
	}
	return newTestQueue(t, cfg, nil)
}

// TestDeadLetterRoundsMatchRabbitMQ replays a scenario run against RabbitMQ
// 3.10.8: queues qa, qb, qc with a TTL dead-letter through the default
// exchange with routing key "sink"; the message taken from "sink" is
// republished to qa, qb, qc, qa, qb in turn.
func TestDeadLetterRoundsMatchRabbitMQ(t *testing.T) {
	sink := "sink"
	queues := map[string]*Queue{}
	for _, n := range []string{"qa", "qb", "qc"} {
		queues[n] = dlxQueue(t, n, "", &sink)
	}
	now := time.Date(2026, 11, 25, 2, 32, 56, 789, time.UTC)
	m := &Message{ID: 1, Exchange: "", RoutingKey: "qa", Body: []byte("x"), Properties: amqp.Properties{
		Headers:    amqp.Table{"CC": []any{"cc1", "cc2"}, "foo": "bar"},
		Expiration: "60000",
	}}
	orig := m

	rounds := []struct {
		queue string
		want  []string
	}{
		{"qa", []string{"qa/expired/1"}},
		{"qb", []string{"qb/expired/1", "qa/expired/1"}},
		{"qc", []string{"qc/expired/1", "qa/expired/1", "qb/expired/1"}},
		{"qa", []string{"qa/expired/2", "qb/expired/1", "qc/expired/1"}},
		{"qb", []string{"qb/expired/2", "qc/expired/1", "qa/expired/2"}},
	}
	for i, r := range rounds {
		in := &Message{ID: m.ID, Exchange: "", RoutingKey: r.queue, Properties: m.Properties, Body: m.Body}
		if i == 0 {
			in = orig
		}
		m = queues[r.queue].DeadLetterMessage(DeadLetter{Message: in, Reason: ReasonExpired}, now, uint64(100+i))
		if got := deathSummary(t, m); !equalStrings(got, r.want) {
			t.Fatalf("round %d (%s): x-death %v, want %v", i+1, r.queue, got, r.want)
		}
		if m.ID != uint64(100+i) || m.Exchange != "" || m.RoutingKey != "sink" || m.Properties.Expiration != "" {
			t.Fatalf("round %d: copy id=%d exchange=%q key=%q expiration=%q", i+1, m.ID, m.Exchange, m.RoutingKey, m.Properties.Expiration)
		}
		h := m.Properties.Headers
		if h["x-first-death-queue"] != "qa" || h["x-first-death-reason"] != "expired" || h["x-first-death-exchange"] != "" {
			t.Fatalf("round %d: first-death headers %v", i+1, h)
		}
		if _, hasCC := h["CC"]; hasCC {
			t.Fatalf("round %d: CC kept although a dead-letter routing key is set", i+1)
		}
		if h["foo"] != "bar" {
			t.Fatalf("round %d: other headers lost: %v", i+1, h)
		}
	}
	// The first qa entry, merged twice, keeps what it recorded first.
	var qa amqp.Table
	for _, d := range m.Properties.Headers["x-death"].([]any) {
		if d.(amqp.Table)["queue"] == "qa" {
			qa = d.(amqp.Table)
		}
	}
	want := amqp.Table{
		"count": int64(2), "reason": "expired", "queue": "qa", "exchange": "",
		"time":                time.Date(2026, 11, 25, 2, 32, 56, 0, time.UTC),
		"routing-keys":        []any{"qa", "cc1", "cc2"},
		"original-expiration": "60000",
	}
	if !reflect.DeepEqual(qa, want) {
		t.Fatalf("qa entry = %v\nwant %v", qa, want)
	}
	// The published message is untouched.
	if !reflect.DeepEqual(orig.Properties.Headers, amqp.Table{"CC": []any{"cc1", "cc2"}, "foo": "bar"}) || orig.Properties.Expiration != "60000" {
		t.Fatalf("original message modified: %+v", orig.Properties)
	}
}

func TestDeadLetterWithoutRoutingKeyKeepsKeysAndCC(t *testing.T) {
	q := dlxQueue(t, "q", "dlx", nil)
	m := &Message{Exchange: "ex", RoutingKey: "rk", Body: []byte("b"), Properties: amqp.Properties{
		Headers: amqp.Table{"CC": []any{"c1"}},
	}}
	c := q.DeadLetterMessage(DeadLetter{Message: m, Reason: ReasonRejected}, time.Unix(1000, 0), 7)
	if c.Exchange != "dlx" || c.RoutingKey != "rk" || string(c.Body) != "b" {
		t.Fatalf("copy = %q %q %q", c.Exchange, c.RoutingKey, c.Body)
	}
	if !reflect.DeepEqual(c.Properties.Headers["CC"], []any{"c1"}) {
		t.Fatal("CC removed without a dead-letter routing key")
	}
	d := c.Properties.Headers["x-death"].([]any)[0].(amqp.Table)
	want := amqp.Table{
		"count": int64(1), "reason": "rejected", "queue": "q", "exchange": "ex",
		"time": time.Unix(1000, 0).UTC(), "routing-keys": []any{"rk", "c1"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("x-death entry = %v\nwant %v", d, want)
	}
}

func TestDeadLetterCopyPureFunction(t *testing.T) {
	m := &Message{Exchange: "ex", RoutingKey: "rk", Properties: amqp.Properties{Headers: amqp.Table{"CC": []any{"c"}}}}
	same := DeadLetterCopy(m, "q", ReasonMaxLen, time.Unix(5, 0), 9, "rk")
	if same.RoutingKey != "rk" || same.Exchange != "ex" || same.ID != 9 || same.Properties.Headers["CC"] == nil {
		t.Fatalf("same-key copy: %+v", same)
	}
	other := DeadLetterCopy(m, "q", ReasonMaxLen, time.Unix(5, 0), 9, "dlrk")
	if other.RoutingKey != "dlrk" || other.Properties.Headers["CC"] != nil {
		t.Fatalf("new-key copy keeps CC or key: %+v", other)
	}
	if got := deathSummary(t, other); !equalStrings(got, []string{"q/maxlen/1"}) {
		t.Fatalf("x-death %v", got)
	}
}

func TestDeadLetterResetsInvalidXDeath(t *testing.T) {
	// As RabbitMQ: an x-death that is not an array is replaced, and the
	// x-first-death headers are not added (the header existed).
	m := &Message{RoutingKey: "rj", Properties: amqp.Properties{Headers: amqp.Table{"x-death": "garbage"}}}
	c := DeadLetterCopy(m, "rj", ReasonRejected, time.Unix(0, 0), 1, "rj")
	if got := deathSummary(t, c); !equalStrings(got, []string{"rj/rejected/1"}) {
		t.Fatalf("x-death %v", got)
	}
	if _, ok := c.Properties.Headers["x-first-death-queue"]; ok {
		t.Fatal("x-first-death-queue set when resetting an invalid x-death")
	}
}

func TestDeadLetterGroupsLegacyDuplicateEntries(t *testing.T) {
	// Entries from before RabbitMQ grouped by (queue, reason): duplicates are
	// folded into the first, whose count becomes the number of duplicates.
	m := &Message{RoutingKey: "k", Properties: amqp.Properties{Headers: amqp.Table{"x-death": []any{
		amqp.Table{"queue": "a", "reason": "expired"},
		amqp.Table{"queue": "b", "reason": "expired", "count": int64(4)},
		amqp.Table{"queue": "a", "reason": "expired"},
		"not a table",
	}}}}
	c := DeadLetterCopy(m, "c", ReasonExpired, time.Unix(0, 0), 1, "k")
	if got := deathSummary(t, c); !equalStrings(got, []string{"c/expired/1", "b/expired/4", "a/expired/2"}) {
		t.Fatalf("x-death %v", got)
	}
	c = DeadLetterCopy(m, "a", ReasonExpired, time.Unix(0, 0), 1, "k")
	if got := deathSummary(t, c); !equalStrings(got, []string{"a/expired/3", "b/expired/4"}) {
		t.Fatalf("x-death %v", got)
	}
}

func TestDeadLetterToleratesOddFieldTypes(t *testing.T) {
	m := &Message{Properties: amqp.Properties{Headers: amqp.Table{
		"CC": "not an array",
		"x-death": []any{
			amqp.Table{"queue": []byte("a"), "reason": []any{}, "count": "x"},
			amqp.Table{"queue": []byte("a"), "reason": []any{}},
		},
	}}}
	c := DeadLetterCopy(m, "q", ReasonExpired, time.Unix(0, 0), 1, "")
	if n := len(c.Properties.Headers["x-death"].([]any)); n != 3 {
		t.Fatalf("x-death has %d entries, want 3", n)
	}
}

func TestDeadLetterCycle(t *testing.T) {
	death := func(queue, reason string) amqp.Table { return amqp.Table{"queue": queue, "reason": reason} }
	tests := []struct {
		name   string
		deaths any
		queue  string
		want   bool
	}{
		{"no x-death", nil, "a", false},
		{"not an array", "x", "a", false},
		{"queue not in x-death", []any{death("b", "expired")}, "a", false},
		{"automatic cycle", []any{death("b", "expired"), death("a", "expired")}, "a", true},
		{"cycle through the newest entry", []any{death("a", "maxlen")}, "a", true},
		{"rejected newest", []any{death("b", "rejected"), death("a", "expired")}, "a", false},
		{"rejected in the queue's own entry", []any{death("b", "expired"), death("a", "rejected")}, "a", false},
		{"rejected only after the cycle", []any{death("a", "expired"), death("c", "rejected")}, "a", true},
		{"unexpected element in the cycle", []any{"junk", death("a", "expired")}, "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{Properties: amqp.Properties{Headers: amqp.Table{}}}
			if tt.deaths != nil {
				m.Properties.Headers["x-death"] = tt.deaths
			}
			if got := DeadLetterCycle(m, tt.queue); got != tt.want {
				t.Fatalf("DeadLetterCycle = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDeadLetterCycleAfterCopy(t *testing.T) {
	key := "a"
	qa := dlxQueue(t, "a", "", &key)
	m := &Message{RoutingKey: "a"}
	c := qa.DeadLetterMessage(DeadLetter{Message: m, Reason: ReasonExpired}, time.Now(), 1)
	if !DeadLetterCycle(c, "a") {
		t.Fatal("expired back into its own queue is not a cycle")
	}
	c = qa.DeadLetterMessage(DeadLetter{Message: m, Reason: ReasonRejected}, time.Now(), 1)
	if DeadLetterCycle(c, "a") {
		t.Fatal("rejected back into its own queue is a cycle")
	}
}
