package cluster_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/cluster/clustertest"
)

// Queues live on one node; the others reach them over queue links.

// homeCounts returns a queue's counts on its home node.
func homeCounts(t *testing.T, home *clustertest.Node, name string) (ready, unacked, consumers int) {
	t.Helper()
	q := home.Server.HomeQueue("/", name)
	if q == nil {
		t.Fatalf("%s is not the home of %s", home.Name, name)
	}
	return q.Counts()
}

// waitCounts waits until a queue's counts on its home node are these.
func waitCounts(t *testing.T, c *clustertest.Cluster, home *clustertest.Node, name string, ready, unacked, consumers int) {
	t.Helper()
	c.Eventually(10*time.Second, fmt.Sprintf("%s counts %d/%d/%d", name, ready, unacked, consumers), func() error {
		r, u, n := homeCounts(t, home, name)
		if r != ready || u != unacked || n != consumers {
			return fmt.Errorf("ready %d, unacked %d, consumers %d", r, u, n)
		}
		return nil
	})
}

// receiveWithin waits for the next delivery.
func receiveWithin(t *testing.T, ds <-chan rmq.Delivery) rmq.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	return rmq.Delivery{}
}

// confirmAll publishes bodies on ch (in confirm mode) and fails unless
// every one is acked.
func confirmAll(t *testing.T, ch *rmq.Channel, exchange, key string, persistent bool, bodies ...string) {
	t.Helper()
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, len(bodies)))
	mode := rmq.Transient
	if persistent {
		mode = rmq.Persistent
	}
	for _, b := range bodies {
		must(t, ch.Publish(exchange, key, false, false, rmq.Publishing{DeliveryMode: mode, Body: []byte(b)}))
	}
	for range bodies {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish %d nacked", c.DeliveryTag)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no confirm within 10 s")
		}
	}
}

// TestPublishOnOneNodeConsumeOnAnother: a queue homed on node 0 takes
// confirmed publishes (transient and persistent) on node 1, and a
// consumer on node 2 with prefetch 10 gets them in order, never more than
// 10 unacked at a time.
func TestPublishOnOneNodeConsumeOnAnother(t *testing.T) {
	c := clustertest.Start(t, 3)
	home, pub, sub := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	_, err := channel(t, home).QueueDeclare("work", true, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c) // every node routes to it

	pch := channel(t, pub)
	must(t, pch.Confirm(false))
	var bodies []string
	for i := range 100 {
		bodies = append(bodies, fmt.Sprintf("m%03d", i))
	}
	confirmAll(t, pch, "", "work", false, bodies[:50]...)
	confirmAll(t, pch, "", "work", true, bodies[50:]...)
	if r, _, _ := homeCounts(t, home, "work"); r != 100 {
		t.Fatalf("home holds %d ready messages after 100 confirms", r)
	}

	sch := channel(t, sub)
	must(t, sch.Qos(10, 0, false))
	ds, err := sch.Consume("work", "remote", false, false, false, false, nil)
	must(t, err)
	var held []rmq.Delivery
	for range 10 {
		held = append(held, receiveWithin(t, ds))
	}
	// The home has delivered 10 and, with no credit left, holds the rest.
	waitCounts(t, c, home, "work", 90, 10, 1)
	for i, d := range held {
		if string(d.Body) != bodies[i] {
			t.Fatalf("delivery %d: %q, want %q", i, d.Body, bodies[i])
		}
	}
	must(t, held[9].Ack(true))
	for i := 10; i < 100; i++ {
		d := receiveWithin(t, ds)
		if string(d.Body) != bodies[i] {
			t.Fatalf("delivery %d: %q, want %q", i, d.Body, bodies[i])
		}
		must(t, d.Ack(false))
	}
	waitCounts(t, c, home, "work", 0, 0, 1)
	must(t, sch.Cancel("remote", false))
	waitCounts(t, c, home, "work", 0, 0, 0)
}

// TestRemoteGetAndSettle: basic.get, ack, nack and reject with and
// without requeue, and recover, on node 1 for a queue homed on node 0.
func TestRemoteGetAndSettle(t *testing.T) {
	c := clustertest.Start(t, 2)
	home, far := c.Nodes[0], c.Nodes[1]
	_, err := channel(t, home).QueueDeclare("q", false, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	ch := channel(t, far)
	must(t, ch.Confirm(false))
	confirmAll(t, ch, "", "q", false, "a", "b", "c")

	get := func() rmq.Delivery {
		t.Helper()
		d, ok, err := ch.Get("q", false)
		must(t, err)
		if !ok {
			t.Fatal("get found nothing")
		}
		return d
	}
	d := get()
	if string(d.Body) != "a" || d.MessageCount != 2 || d.Redelivered {
		t.Fatalf("first get: %q count %d redelivered %v", d.Body, d.MessageCount, d.Redelivered)
	}
	must(t, d.Nack(false, true)) // back to the head, redelivered
	waitCounts(t, c, home, "q", 3, 0, 0)
	d = get()
	if string(d.Body) != "a" || !d.Redelivered {
		t.Fatalf("get after nack: %q redelivered %v", d.Body, d.Redelivered)
	}
	must(t, d.Ack(false))
	d = get()
	must(t, d.Reject(false)) // dropped (no dead-letter exchange)
	waitCounts(t, c, home, "q", 1, 0, 0)
	d = get()
	if string(d.Body) != "c" {
		t.Fatalf("last get: %q", d.Body)
	}
	waitCounts(t, c, home, "q", 0, 1, 0)
	must(t, ch.Recover(true))
	waitCounts(t, c, home, "q", 1, 0, 0)
	if _, ok, err := ch.Get("q", true); err != nil || !ok {
		t.Fatalf("no-ack get after recover: %v %v", ok, err)
	}
	if _, ok, err := ch.Get("q", true); err != nil || ok {
		t.Fatalf("get of an empty queue: %v %v", ok, err)
	}
	// Purge and delete from the far node.
	confirmAll(t, ch, "", "q", false, "x", "y")
	n, err := ch.QueuePurge("q", false)
	if err != nil || n != 2 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	confirmAll(t, ch, "", "q", false, "z")
	n, err = ch.QueueDelete("q", false, false, false)
	if err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	c.Eventually(5*time.Second, "the queue gone from its home", func() error {
		if home.Server.HomeQueue("/", "q") != nil {
			return errors.New("still there")
		}
		return nil
	})
	_, err = ch.QueueDeclarePassive("q", false, false, false, false, nil)
	var ae *rmq.Error
	if !errors.As(err, &ae) || ae.Code != 404 || !strings.Contains(ae.Reason, "no queue 'q'") {
		t.Fatalf("passive declare after delete: %v", err)
	}
}

// TestHomeNodeDown stops the home node of a queue: a consumer of it on
// another node gets basic.cancel, a passive declare gets RabbitMQ's 404,
// publishes to it are nacked while those to queues that are up are
// confirmed; restarted, the node has its durable messages back, reachable
// from the others.
func TestHomeNodeDown(t *testing.T) {
	c := clustertest.Start(t, 3)
	home, far := c.Nodes[1], c.Nodes[2]
	hch := channel(t, home)
	_, err := hch.QueueDeclare("durable", true, false, false, false, nil)
	must(t, err)
	_, err = channel(t, far).QueueDeclare("up", true, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	fch := channel(t, far)
	must(t, fch.Confirm(false))
	confirmAll(t, fch, "", "durable", true, "kept-1", "kept-2")

	cch := channel(t, far)
	cancels := cch.NotifyCancel(make(chan string, 1))
	_, err = cch.Consume("durable", "watcher", false, false, false, false, rmq.Table{"x-priority": -1})
	must(t, err)
	waitCounts(t, c, home, "durable", 0, 2, 1)

	home.Stop()
	select {
	case tag := <-cancels:
		if tag != "watcher" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel for the consumer of a queue whose node stopped")
	}
	_, err = channel(t, far).QueueDeclarePassive("durable", true, false, false, false, nil)
	var ae *rmq.Error
	want := "NOT_FOUND - home node '" + home.Name + "' of durable queue 'durable' in vhost '/' is down or inaccessible"
	if !errors.As(err, &ae) || ae.Code != 404 || ae.Reason != want {
		t.Fatalf("passive declare: %v, want 404 %s", err, want)
	}
	_, err = channel(t, far).Consume("durable", "", false, false, false, false, nil)
	if !errors.As(err, &ae) || ae.Code != 404 {
		t.Fatalf("consume: %v", err)
	}
	confirmAll(t, fch, "", "up", true, "still-confirmed")
	confirms := fch.NotifyPublish(make(chan rmq.Confirmation, 1))
	must(t, fch.Publish("", "durable", false, false, rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte("lost")}))
	select {
	case conf := <-confirms:
		if conf.Ack {
			t.Fatal("a publish to a queue whose node is down was confirmed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no confirm for a publish to a queue whose node is down")
	}

	// Not WaitFormed: hashicorp/raft's RestoreCommittedLogs does not
	// read the configuration entries it replays, so a node restarted
	// before a snapshot covers its last configuration comes back without
	// one until the leader sends a newer one (it follows the leader all
	// the same).
	home.Start()
	ch := channel(t, far)
	c.Eventually(10*time.Second, "the queue reachable again", func() error {
		_, err := channel(t, far).QueueDeclarePassive("durable", true, false, false, false, nil)
		return err
	})
	var got []string
	for range 2 {
		d, ok, err := ch.Get("durable", true)
		must(t, err)
		if !ok {
			t.Fatalf("after the restart the queue has %v only", got)
		}
		if !d.Redelivered {
			t.Errorf("%q was delivered before the stop but is not redelivered", d.Body)
		}
		got = append(got, string(d.Body))
	}
	if strings.Join(got, ",") != "kept-1,kept-2" {
		t.Fatalf("after the restart: %v", got)
	}
}

// TestRemoteConsumerGoneRequeues: deliveries a remote consumer did not
// ack go back to the queue at home when its channel closes and when its
// connection closes, flagged redelivered.
func TestRemoteConsumerGoneRequeues(t *testing.T) {
	c := clustertest.Start(t, 2)
	home, far := c.Nodes[0], c.Nodes[1]
	_, err := channel(t, home).QueueDeclare("q", false, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	pch := channel(t, home)
	must(t, pch.Confirm(false))
	confirmAll(t, pch, "", "q", false, "1", "2", "3")

	conn := dial(t, far.URL)
	ch, err := conn.Channel()
	must(t, err)
	ds, err := ch.Consume("q", "", false, false, false, false, nil)
	must(t, err)
	for range 3 {
		receiveWithin(t, ds)
	}
	waitCounts(t, c, home, "q", 0, 3, 1)
	must(t, ch.Close())
	waitCounts(t, c, home, "q", 3, 0, 0)

	ch, err = conn.Channel()
	must(t, err)
	ds, err = ch.Consume("q", "", false, false, false, false, nil)
	must(t, err)
	for range 3 {
		if d := receiveWithin(t, ds); !d.Redelivered {
			t.Errorf("%q requeued but not redelivered", d.Body)
		}
	}
	waitCounts(t, c, home, "q", 0, 3, 1)
	must(t, conn.Close())
	waitCounts(t, c, home, "q", 3, 0, 0)
}

// TestRemoteQueueDeletedCancelsConsumers: deleting a queue (from its home
// node) cancels its consumers on other nodes with basic.cancel.
func TestRemoteQueueDeletedCancelsConsumers(t *testing.T) {
	c := clustertest.Start(t, 2)
	home, far := c.Nodes[0], c.Nodes[1]
	_, err := channel(t, home).QueueDeclare("q", false, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	ch := channel(t, far)
	cancels := ch.NotifyCancel(make(chan string, 1))
	_, err = ch.Consume("q", "c1", false, false, false, false, nil)
	must(t, err)
	_, err = channel(t, home).QueueDelete("q", false, false, false)
	must(t, err)
	select {
	case tag := <-cancels:
		if tag != "c1" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel")
	}
}

// TestRoutingFeaturesAcrossNodes: a mandatory publish on one node that
// reaches no queue is returned, one that reaches a queue on another node
// is not; an alternate exchange leads to a queue on another node; a
// message rejected on one node is dead-lettered to a queue on another;
// a message that expires in a queue on another node is dead-lettered too.
func TestRoutingFeaturesAcrossNodes(t *testing.T) {
	c := clustertest.Start(t, 3)
	a, b, pub := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	ach, bch := channel(t, a), channel(t, b)
	must(t, ach.ExchangeDeclare("ae", "fanout", false, false, false, false, nil))
	must(t, ach.ExchangeDeclare("main", "direct", false, false, false, false, rmq.Table{"alternate-exchange": "ae"}))
	_, err := ach.QueueDeclare("unrouted", false, false, false, false, nil)
	must(t, err)
	must(t, ach.QueueBind("unrouted", "", "ae", false, nil))
	_, err = bch.QueueDeclare("routed", false, false, false, false, nil)
	must(t, err)
	must(t, bch.QueueBind("routed", "k", "main", false, nil))
	must(t, ach.ExchangeDeclare("dlx", "fanout", false, false, false, false, nil))
	_, err = ach.QueueDeclare("dead", false, false, false, false, nil)
	must(t, err)
	must(t, ach.QueueBind("dead", "", "dlx", false, nil))
	_, err = bch.QueueDeclare("work", false, false, false, false, rmq.Table{"x-dead-letter-exchange": "dlx"})
	must(t, err)
	_, err = bch.QueueDeclare("short", false, false, false, false, rmq.Table{"x-dead-letter-exchange": "dlx", "x-message-ttl": int32(50)})
	must(t, err)
	sameMetadata(t, c)

	ch := channel(t, pub)
	must(t, ch.Confirm(false))
	returns := ch.NotifyReturn(make(chan rmq.Return, 1))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 1))
	publish := func(ex, key string, mandatory bool, body string) {
		t.Helper()
		must(t, ch.Publish(ex, key, mandatory, false, rmq.Publishing{Body: []byte(body)}))
		if conf := <-confirms; !conf.Ack {
			t.Fatalf("publish of %s nacked", body)
		}
	}
	publish("", "nowhere", true, "returned")
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || string(r.Body) != "returned" {
			t.Fatalf("return: %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Fatal("no basic.return before the confirm of an unroutable mandatory publish")
	}
	publish("", "routed", true, "to-b")
	publish("main", "k", false, "via-main")
	publish("main", "other", false, "via-ae")
	select {
	case r := <-returns:
		t.Fatalf("returned a routed message: %q", r.Body)
	default:
	}
	getOne := func(n *clustertest.Node, q, want string) {
		t.Helper()
		c.Eventually(5*time.Second, "a message in "+q, func() error {
			d, ok, err := channel(t, n).Get(q, true)
			switch {
			case err != nil:
				return err
			case !ok:
				return errors.New("empty")
			case string(d.Body) != want:
				t.Fatalf("%s: got %q, want %q", q, d.Body, want)
			}
			return nil
		})
	}
	getOne(a, "routed", "to-b")
	getOne(a, "routed", "via-main")
	getOne(b, "unrouted", "via-ae")

	publish("", "work", false, "rejected")
	wch := channel(t, a)
	d, ok, err := wch.Get("work", false)
	if err != nil || !ok {
		t.Fatalf("get from work: %v %v", ok, err)
	}
	must(t, d.Reject(false))
	getOne(pub, "dead", "rejected")

	publish("", "short", false, "expired")
	getOne(pub, "dead", "expired")
}

// TestBalancedLocator: queues declared on one node with the balanced
// locator spread over the running nodes.
func TestBalancedLocator(t *testing.T) {
	c := clustertest.Start(t, 3)
	ch := channel(t, c.Nodes[0])
	homes := map[string]int{}
	for i := range 6 {
		name := fmt.Sprintf("b%d", i)
		_, err := ch.QueueDeclare(name, false, false, false, false, rmq.Table{"x-queue-leader-locator": "balanced"})
		must(t, err)
		homes[c.Nodes[0].Server.Vhost("/").Queue(name).Info().Node]++
	}
	for _, n := range c.Nodes {
		if homes[n.Name] != 2 {
			t.Fatalf("balanced queues per node: %v", homes)
		}
	}
	_, err := ch.QueueDeclare("local", false, false, false, false, nil)
	must(t, err)
	if node := c.Nodes[0].Server.Vhost("/").Queue("local").Info().Node; node != c.Nodes[0].Name {
		t.Fatalf("a client-local queue declared on %s lives on %s", c.Nodes[0].Name, node)
	}
}

// TestRemoteConsumerCredit: a consumer on another node without a
// prefetch limit holds at most the link's credit (400) of unacked
// deliveries while it does not ack, the rest waits at home; a no-ack
// consumer gets every message, its credit coming back as they are handed
// on; an exclusive consumer on one node keeps others out.
func TestRemoteConsumerCredit(t *testing.T) {
	c := clustertest.Start(t, 2)
	home, far := c.Nodes[0], c.Nodes[1]
	hch := channel(t, home)
	for _, q := range []string{"slow", "fast"} {
		_, err := hch.QueueDeclare(q, false, false, false, false, nil)
		must(t, err)
	}
	sameMetadata(t, c)
	must(t, hch.Confirm(false))
	var bodies []string
	for i := range 1000 {
		bodies = append(bodies, fmt.Sprint(i))
	}
	confirmAll(t, hch, "", "slow", false, bodies...)
	confirmAll(t, hch, "", "fast", false, bodies...)

	sch := channel(t, far)
	_, err := sch.Consume("slow", "", false, false, false, false, nil)
	must(t, err)
	waitCounts(t, c, home, "slow", 600, 400, 1)

	fch := channel(t, far)
	ds, err := fch.Consume("fast", "", true, false, false, false, nil)
	must(t, err)
	for i := range bodies {
		if d := receiveWithin(t, ds); string(d.Body) != bodies[i] {
			t.Fatalf("no-ack delivery %d: %q", i, d.Body)
		}
	}
	waitCounts(t, c, home, "fast", 0, 0, 1)

	xch := channel(t, far)
	_, err = xch.Consume("fast", "", false, true, false, false, nil)
	var ae *rmq.Error
	if !errors.As(err, &ae) || ae.Code != 403 || ae.Reason != "ACCESS_REFUSED - queue 'fast' in vhost '/' in exclusive use" {
		t.Fatalf("exclusive consume of a queue with a consumer: %v", err)
	}
}

// TestConsumingNodeDownRequeues: when the node of a consumer stops, or
// the link to it breaks, the home requeues what it had delivered to it;
// when the link breaks, the consumer gets basic.cancel.
func TestConsumingNodeDownRequeues(t *testing.T) {
	c := clustertest.Start(t, 3)
	home, far := c.Nodes[0], c.Nodes[2]
	hch := channel(t, home)
	_, err := hch.QueueDeclare("q", true, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	must(t, hch.Confirm(false))
	confirmAll(t, hch, "", "q", true, "1", "2")
	ds, err := channel(t, far).Consume("q", "", false, false, false, false, nil)
	must(t, err)
	receiveWithin(t, ds)
	receiveWithin(t, ds)
	waitCounts(t, c, home, "q", 0, 2, 1)
	far.Stop()
	waitCounts(t, c, home, "q", 2, 0, 0)

	other := c.Nodes[1]
	ch := channel(t, other)
	cancels := ch.NotifyCancel(make(chan string, 1))
	ds, err = ch.Consume("q", "c", false, false, false, false, nil)
	must(t, err)
	receiveWithin(t, ds)
	receiveWithin(t, ds)
	waitCounts(t, c, home, "q", 0, 2, 1)
	home.Cluster.BreakLinks(other.Name)
	waitCounts(t, c, home, "q", 2, 0, 0)
	select {
	case tag := <-cancels:
		if tag != "c" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel after the link broke")
	}
	// A new link serves the queue again.
	d, ok, err := ch.Get("q", false)
	if err != nil || !ok || !d.Redelivered {
		t.Fatalf("get after the link broke: %v %v redelivered=%v", ok, err, d.Redelivered)
	}
}

// TestTransactionToRemoteQueue: tx.commit-ok on one node comes once the
// home node of the queue has the transaction's messages.
func TestTransactionToRemoteQueue(t *testing.T) {
	c := clustertest.Start(t, 2)
	home, far := c.Nodes[0], c.Nodes[1]
	_, err := channel(t, home).QueueDeclare("q", true, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	ch := channel(t, far)
	must(t, ch.Tx())
	for i := range 3 {
		must(t, ch.Publish("", "q", false, false, rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(fmt.Sprint(i))}))
	}
	if r, _, _ := homeCounts(t, home, "q"); r != 0 {
		t.Fatalf("%d messages at home before the commit", r)
	}
	must(t, ch.TxCommit())
	if r, _, _ := homeCounts(t, home, "q"); r != 3 {
		t.Fatalf("%d messages at home after commit-ok, want 3", r)
	}
}
