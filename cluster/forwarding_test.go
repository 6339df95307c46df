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
