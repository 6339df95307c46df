package queue

import (
	"time"

	"github.com/warrenmq/warren/amqp"
)

// Dead-letter reasons, as recorded in x-death.
const (
	ReasonRejected = "rejected" // basic.reject or basic.nack with requeue=false
	ReasonExpired  = "expired"  // message TTL
	ReasonMaxLen   = "maxlen"   // max-length or max-length-bytes overflow
)

// DeadLetter is one message a queue dead-lettered, and why.
type DeadLetter struct {
	Message *Message
	Reason  string // ReasonRejected, ReasonExpired or ReasonMaxLen
}

// DeadLetterCopy returns the message as it is republished to the DLX, as
// RabbitMQ 3.10-3.12 builds it (rabbit_dead_letter:make_msg):
//
//   - headers get x-death updated: an array, newest first, of tables with
//     count (int64), reason, queue, time (time.Time, whole seconds), exchange
//     (the exchange m was published to), routing-keys ([]any of strings: m's
//     routing key then its CC and BCC header keys) and original-expiration
//     when m had a per-message expiration. An existing entry for the same
//     (queue, reason) is not duplicated: it moves to the front with its count
//     incremented (its other fields kept). As RabbitMQ does, the existing
//     entries are first grouped by (queue, reason), which reverses their
//     order when there are two or more. An x-death that is not an array is
//     replaced by a new one-entry array.
//   - x-first-death-queue, -reason and -exchange are set when m had no
//     x-death header.
//   - the expiration property is removed.
//
// routingKey is the DLX routing key to use: the queue's
// x-dead-letter-routing-key if set, else m's routing key. When it differs
// from m's routing key the CC header is removed (as RabbitMQ does when
// x-dead-letter-routing-key is set). The copy keeps m's Exchange: set it to the
// DLX name before publishing it, or use Queue.DeadLetterMessage, which does
// both from the queue's configuration. m is not modified; the copy shares
// m's body.
func DeadLetterCopy(m *Message, queueName, reason string, now time.Time, newID uint64, routingKey string) *Message {
	return deadLetterCopy(m, queueName, reason, now, newID, m.Exchange, routingKey, routingKey != m.RoutingKey)
}

// DeadLetterMessage returns the dead-letter copy of dl for this queue's DLX:
// DeadLetterCopy with the copy's Exchange set to the DLX name, its routing key
// set to x-dead-letter-routing-key if the queue has one (removing the CC
// header then) or else kept.
func (q *Queue) DeadLetterMessage(dl DeadLetter, now time.Time, newID uint64) *Message {
	q.mu.Lock()
	cfg := q.cfg // a policy may change it
	q.mu.Unlock()
	key, dropCC := dl.Message.RoutingKey, false
	if cfg.HasDeadLetterRoutingKey {
		key, dropCC = cfg.DeadLetterRoutingKey, true
	}
	return deadLetterCopy(dl.Message, cfg.Name, dl.Reason, now, newID, cfg.DeadLetterExchange, key, dropCC)
}

func deadLetterCopy(m *Message, queueName, reason string, now time.Time, newID uint64, exchange, routingKey string, dropCC bool) *Message {
	old := m.Properties.Headers
	headers := make(amqp.Table, len(old)+4)
	for k, v := range old {
		headers[k] = v
	}
	info := deathInfo(m, queueName, reason, now)
	switch xd, present := old["x-death"]; deaths := xd.(type) {
	case []any:
		headers["x-death"] = mergeDeath(deaths, info)
	default:
		if !present {
			headers["x-first-death-reason"] = reason
			headers["x-first-death-queue"] = queueName
			headers["x-first-death-exchange"] = m.Exchange
		}
		info["count"] = int64(1)
		headers["x-death"] = []any{info}
	}
	if dropCC {
		delete(headers, "CC")
	}
	c := &Message{ID: newID, Exchange: exchange, RoutingKey: routingKey, Properties: m.Properties, Body: m.Body}
	c.Properties.Headers = headers
	c.Properties.Expiration = ""
	return c
}

// deathInfo is the x-death entry (without count) for m dying in queueName.
func deathInfo(m *Message, queueName, reason string, now time.Time) amqp.Table {
	keys := []any{m.RoutingKey}
	for _, h := range [...]string{"CC", "BCC"} {
		if routes, ok := m.Properties.Headers[h].([]any); ok {
			for _, r := range routes {
				if s, ok := r.(string); ok {
					keys = append(keys, s)
				}
			}
		}
	}
	info := amqp.Table{
		"reason":       reason,
		"queue":        queueName,
		"time":         time.Unix(now.Unix(), 0).UTC(),
		"exchange":     m.Exchange,
		"routing-keys": keys,
	}
	if m.Properties.Expiration != "" {
		info["original-expiration"] = m.Properties.Expiration
	}
	return info
}

// mergeDeath returns the new x-death array: the existing entries grouped by
// (queue, reason), with info's (queue, reason) entry, counted, in front.
// Elements that are not tables are dropped.
func mergeDeath(deaths []any, info amqp.Table) []any {
	grouped := groupDeaths(deaths)
	out := make([]any, 1, len(grouped)+1)
	var merged amqp.Table
	for _, d := range grouped {
		if merged == nil && sameDeath(d, info) {
			merged = copyTable(d)
			merged["count"] = deathCount(d) + 1
			continue
		}
		out = append(out, d)
	}
	if merged == nil {
		merged = info
		merged["count"] = int64(1)
	}
	out[0] = merged
	return out
}

// groupDeaths keeps one entry per (queue, reason): the first one, given a
// count of the number of duplicates if it had none. Like RabbitMQ's
// group_by_queue_and_reason it returns the groups in reverse order when
// there are two or more entries.
func groupDeaths(deaths []any) []amqp.Table {
	tables := make([]amqp.Table, 0, len(deaths))
	for _, d := range deaths {
		if t, ok := asTable(d); ok {
			tables = append(tables, t)
		}
	}
	if len(tables) <= 1 {
		return tables
	}
	var out []amqp.Table
	for i, t := range tables {
		seen := false
		for _, prev := range tables[:i] {
			if sameDeath(prev, t) {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		n := 0
		for _, other := range tables[i:] {
			if sameDeath(other, t) {
				n++
			}
		}
		if _, ok := t["count"]; !ok {
			t = copyTable(t)
			t["count"] = int64(n)
		}
		out = append(out, t)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// sameDeath reports whether two x-death entries have the same queue and
// reason (absent fields compare equal to each other).
func sameDeath(a, b amqp.Table) bool {
	return fieldEqual(a["queue"], b["queue"]) && fieldEqual(a["reason"], b["reason"])
}

// fieldEqual compares two field values with ==, taking values that cannot be
// compared (slices, tables) as different instead of panicking.
func fieldEqual(a, b any) (equal bool) {
	defer func() {
		if recover() != nil {
			equal = false
		}
	}()
	return a == b
}

// deathCount is an entry's count, 0 when it has none that is an integer.
func deathCount(t amqp.Table) int64 {
	n, _ := amqpInt(t["count"])
	return n
}

func asTable(v any) (amqp.Table, bool) {
	switch t := v.(type) {
	case amqp.Table:
		return t, true
	case map[string]any:
		return amqp.Table(t), true
	}
	return nil, false
}

func copyTable(t amqp.Table) amqp.Table {
	c := make(amqp.Table, len(t)+1)
	for k, v := range t {
		c[k] = v
	}
	return c
}

// DeadLetterCycle reports whether publishing m (a dead-letter copy) into the
// queue named queueName closes a dead-letter cycle that RabbitMQ drops: m's
// x-death has an entry for queueName, and neither that entry nor any newer
// one has reason "rejected" (a cycle that a client took part in by rejecting
// is allowed).
func DeadLetterCycle(m *Message, queueName string) bool {
	deaths, ok := m.Properties.Headers["x-death"].([]any)
	if !ok {
		return false
	}
	for i, d := range deaths {
		t, isTable := asTable(d)
		if !isTable || t["queue"] != any(queueName) {
			continue
		}
		for _, c := range deaths[:i+1] {
			ct, ok := asTable(c)
			if !ok || ct["reason"] == any(ReasonRejected) {
				return false
			}
		}
		return true
	}
	return false
}
