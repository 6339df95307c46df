package queue

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// testConsumer records its deliveries. credit < 0 means unlimited.
type testConsumer struct {
	name string

	mu        sync.Mutex
	credit    int
	got       []*Entry
	redeliver []bool
	notify    chan *Entry // optional: receives each delivery
}

func newConsumer(name string, credit int) *testConsumer {
	return &testConsumer{name: name, credit: credit}
}

func (c *testConsumer) Deliver(e *Entry, redelivered bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.credit == 0 {
		return false
	}
	if c.credit > 0 {
		c.credit--
	}
	c.got = append(c.got, e)
	c.redeliver = append(c.redeliver, redelivered)
	if c.notify != nil {
		c.notify <- e
	}
	return true
}

// grant adds credit (for a consumer with limited credit).
func (c *testConsumer) grant(n int) {
	c.mu.Lock()
	c.credit += n
	c.mu.Unlock()
}

// bodies returns the bodies delivered so far.
func (c *testConsumer) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.got))
	for i, e := range c.got {
		out[i] = string(e.Message().Body)
	}
	return out
}

// take returns and forgets the entries delivered so far.
func (c *testConsumer) take() []*Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got, c.redeliver = nil, nil
	return got
}

// recorder collects hook calls.
type recorder struct {
	mu      sync.Mutex
	dead    []DeadLetter
	removed []string
	deadCh  chan DeadLetter
	unused  chan struct{}
	expired chan struct{}
}

func newRecorder() *recorder {
	return &recorder{
		deadCh:  make(chan DeadLetter, 1024),
		unused:  make(chan struct{}, 16),
		expired: make(chan struct{}, 16),
	}
}

func (r *recorder) hooks() Hooks {
	return Hooks{
		DeadLetter: func(_ *Queue, dead []DeadLetter) {
			r.mu.Lock()
			r.dead = append(r.dead, dead...)
			r.mu.Unlock()
			for _, d := range dead {
				r.deadCh <- d
			}
		},
		Removed: func(_ *Queue, msgs []*Message) {
			r.mu.Lock()
			for _, m := range msgs {
				r.removed = append(r.removed, string(m.Body))
			}
			r.mu.Unlock()
		},
		Unused:  func(*Queue) { r.unused <- struct{}{} },
		Expired: func(*Queue) { r.expired <- struct{}{} },
	}
}

func (r *recorder) removedBodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.removed...)
}

func (r *recorder) deadLetters() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.dead))
	for i, d := range r.dead {
		out[i] = string(d.Message.Body) + ":" + d.Reason
	}
	return out
}

// waitDead waits for the next dead letter.
func (r *recorder) waitDead(t *testing.T, timeout time.Duration) DeadLetter {
	t.Helper()
	select {
	case d := <-r.deadCh:
		return d
	case <-time.After(timeout):
		t.Fatalf("no dead letter within %v", timeout)
		return DeadLetter{}
	}
}

func msg(body string) *Message {
	return &Message{Exchange: "ex", RoutingKey: "rk", Body: []byte(body)}
}

func msgWith(body string, props amqp.Properties) *Message {
	m := msg(body)
	m.Properties = props
	return m
}

func newTestQueue(t *testing.T, cfg Config, r *recorder) *Queue {
	t.Helper()
	var h Hooks
	if r != nil {
		h = r.hooks()
	}
	q := New(cfg, h)
	t.Cleanup(func() { q.Delete() })
	return q
}

func publishN(t *testing.T, q *Queue, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if res := q.Publish(msg(b)); res != Accepted {
			t.Fatalf("Publish(%q) = %v, want accepted", b, res)
		}
	}
}

func seqBodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func getBodies(t *testing.T, q *Queue) []string {
	t.Helper()
	var out []string
	for {
		e, _, ok := q.Get(true)
		if !ok {
			return out
		}
		out = append(out, string(e.Message().Body))
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func wantBodies(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !equalStrings(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}
