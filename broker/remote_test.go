package broker_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/queue"
)

// fakeRemote stands for a cluster: this node is "node-a", the balanced
// locator picks "node-b", and queues homed there are fakeRemoteQueues.
type fakeRemote struct {
	mu      sync.Mutex
	handles map[string]*fakeRemoteQueue
	down    atomic.Bool
	served  *broker.Server
}

func (f *fakeRemote) NodeName() string     { return "node-a" }
func (f *fakeRemote) BalancedNode() string { return "node-b" }
func (f *fakeRemote) Serve(s *broker.Server) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.served = s
}

func (f *fakeRemote) QueueHandle(q meta.Queue) broker.RemoteQueue {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handles == nil {
		f.handles = map[string]*fakeRemoteQueue{}
	}
	h := &fakeRemoteQueue{rec: q, remote: f}
	f.handles[q.Name] = h
	return h
}

func (f *fakeRemote) handle(name string) *fakeRemoteQueue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handles[name]
}

// fakeRemoteQueue takes messages and answers confirms at once.
type fakeRemoteQueue struct {
	rec    meta.Queue
	remote *fakeRemote

	mu  sync.Mutex
	got []string
}

func (q *fakeRemoteQueue) Name() string { return q.rec.Name }
func (q *fakeRemoteQueue) Node() string { return q.rec.Node }
func (q *fakeRemoteQueue) Info() broker.QueueInfo {
	return broker.QueueInfo{Vhost: q.rec.Vhost, Name: q.rec.Name, Node: q.rec.Node}
}
func (q *fakeRemoteQueue) Counts() (int, int, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.got), 0, 0
}
func (q *fakeRemoteQueue) MessageStats() broker.MessageStats { return broker.MessageStats{} }
func (q *fakeRemoteQueue) Publish(m *queue.Message) queue.PublishResult {
	if q.remote.down.Load() {
		return queue.Rejected
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.got = append(q.got, string(m.Body))
	return queue.Accepted
}
func (q *fakeRemoteQueue) PublishConfirm(m *queue.Message, done func(queue.PublishResult)) {
	go done(q.Publish(m))
}
func (q *fakeRemoteQueue) WaitRoom() {}
func (q *fakeRemoteQueue) Available() error {
	if q.remote.down.Load() {
		return broker.HomeDownError(q.rec.Node, q.rec)
	}
	return nil
}
func (q *fakeRemoteQueue) Get(bool) (broker.QueueEntry, int, bool)       { return nil, 0, false }
func (q *fakeRemoteQueue) Settle(broker.Settlement, []broker.QueueEntry) {}
func (q *fakeRemoteQueue) Purge() int                                    { return 0 }
func (q *fakeRemoteQueue) Delete() int                                   { return 0 }
func (q *fakeRemoteQueue) AddConsumer(broker.Consumer, queue.ConsumerOptions) error {
	return q.Available()
}
func (q *fakeRemoteQueue) RemoveConsumer(broker.Consumer) {}
func (q *fakeRemoteQueue) Kick(broker.Consumer)           {}

func (q *fakeRemoteQueue) bodies() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.got...)
}

// TestQueuePlacement: with a Remote, a declared queue's home is this node
// (client-local) or, with the balanced locator (argument or policy), the
// node the Remote picks; a queue homed elsewhere is a remote handle that
// routing publishes to, whose confirms wait for it, and whose unreachable
// home gives RabbitMQ's 404.
func TestQueuePlacement(t *testing.T) {
	remote := &fakeRemote{}
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) { c.Remote = remote }))
	if remote.served != b.Server {
		t.Fatal("the broker did not give the remote its server")
	}
	ch := openChannel(t, dial(t, b.URL))
	v := b.Server.Vhost("/")
	home := func(name string) string {
		var node string
		b.Server.MetaLog().View(func(st *meta.State) {
			if q := st.Queue("/", name); q != nil {
				node = q.Node
			}
		})
		return node
	}

	_, err := ch.QueueDeclare("here", true, false, false, false, nil)
	must(t, err)
	if got := home("here"); got != "node-a" {
		t.Errorf("client-local queue homed on %q", got)
	}
	if info := v.Queue("here").Info(); info.Node != "node-a" {
		t.Errorf("local queue's info names node %q", info.Node)
	}
	_, err = ch.QueueDeclare("there", true, false, false, false, rmq.Table{"x-queue-leader-locator": "balanced"})
	must(t, err)
	if got := home("there"); got != "node-b" {
		t.Errorf("balanced queue homed on %q", got)
	}
	must(t, v.PutPolicy(broker.Policy{Name: "spread", Pattern: "^spread", ApplyTo: "queues", Definition: map[string]any{"queue-leader-locator": "balanced"}}))
	_, err = ch.QueueDeclare("spread.1", false, false, false, false, nil)
	must(t, err)
	if got := home("spread.1"); got != "node-b" {
		t.Errorf("queue under a balanced policy homed on %q", got)
	}
	// A redeclare with another locator does not move the queue.
	_, err = ch.QueueDeclare("there", true, false, false, false, rmq.Table{"x-queue-leader-locator": "client-local"})
	must(t, err)
	if got := home("there"); got != "node-b" {
		t.Errorf("redeclared queue moved to %q", got)
	}
	h := remote.handle("there")
	if h == nil || v.Queue("there") != broker.QueueHandle(h) {
		t.Fatal("the queue homed on node-b is not a remote handle")
	}

	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 4))
	for _, body := range []string{"one", "two"} {
		publish(t, ch, "", "there", text(body))
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %s to the remote queue nacked", body)
		}
	}
	if got := h.bodies(); strings.Join(got, ",") != "one,two" {
		t.Errorf("remote queue got %v", got)
	}

	remote.down.Store(true)
	publish(t, ch, "", "there", text("lost"))
	select {
	case c := <-confirms:
		if c.Ack {
			t.Error("publish to a queue whose node is down was acked")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no confirm for a publish to a queue whose node is down")
	}
	publish(t, ch, "", "here", text("kept"))
	if c := <-confirms; !c.Ack {
		t.Error("publish to a local queue nacked while another node is down")
	}
	_, err = ch.QueueDeclarePassive("there", true, false, false, false, nil)
	ae := expectCode(t, err, 404)
	if want := "NOT_FOUND - home node 'node-b' of durable queue 'there' in vhost '/' is down or inaccessible"; ae.Reason != want {
		t.Errorf("passive declare: %q, want %q", ae.Reason, want)
	}
	ch = openChannel(t, dial(t, b.URL))
	_, err = ch.Consume("there", "", false, false, false, false, nil)
	expectCode(t, err, 404)
	ch = openChannel(t, dial(t, b.URL))
	_, _, err = ch.Get("spread.1", false)
	ae = expectCode(t, err, 404)
	if want := "NOT_FOUND - home node 'node-b' of queue 'spread.1' in vhost '/' is down or inaccessible"; ae.Reason != want {
		t.Errorf("get: %q, want %q", ae.Reason, want)
	}
}
