//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// Queues on the LAN of lan_test.go: confirms that survive kill -9 of the
// queue's home node, a node cut off from the others that keeps serving
// its own queues to its own clients, and a node that rejoins under its
// old name with an empty data dir.

// lanSeed returns the seed of a test's random choices: WARREN_LAN_SEED,
// or the clock. It is logged, so a failure can be replayed.
func lanSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WARREN_LAN_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WARREN_LAN_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (WARREN_LAN_SEED=%d replays it)", seed, seed)
	return seed
}

// channel opens a connection to the node and a channel on it; the
// connection closes when the test ends.
func (nd *lanNode) channel(t *testing.T) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	c, err := nd.amqp()
	if err != nil {
		t.Fatalf("connect to %s: %v", nd.name, err)
	}
	t.Cleanup(func() { c.Close() })
	ch, err := c.Channel()
	if err != nil {
		t.Fatalf("channel on %s: %v", nd.name, err)
	}
	return c, ch
}

// publishBodiesConfirmed puts ch in confirm mode, publishes bodies as
// persistent messages to queue through it and waits (at most 10 s)
// until each one is acked; a nack or a closed channel fails the test.
// It listens for confirms afresh: call it once per channel.
func publishBodiesConfirmed(t *testing.T, ch *rmq.Channel, queue string, bodies []string) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, len(bodies)))
	for _, b := range bodies {
		if err := ch.PublishWithContext(context.Background(), "", queue, false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(b)}); err != nil {
			t.Fatalf("publish to %s: %v", queue, err)
		}
	}
	deadline := time.After(10 * time.Second)
	for range bodies {
		select {
		case c, ok := <-confirms:
			if !ok {
				t.Fatalf("the channel closed before every publish to %s was confirmed", queue)
			}
			if !c.Ack {
				t.Fatalf("publish %d to %s nacked", c.DeliveryTag, queue)
			}
		case <-deadline:
			t.Fatalf("publishes to %s not confirmed within 10 s", queue)
		}
	}
}

// consumeBodies consumes n messages from queue on a channel of its own
// on c, each within 10 s, acks them and closes the channel; it returns
// their bodies in order. The prefetch is n and the acks go once all n
// are in, so the consumer holds no more than n.
func consumeBodies(t *testing.T, c *rmq.Connection, queue string, n int) []string {
	t.Helper()
	if n == 0 {
		return nil
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Qos(n, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	var got []string
	var lastTag uint64
	for len(got) < n {
		select {
		case d, ok := <-ds:
			if !ok {
				t.Fatalf("the consumer of %s was cancelled after %d of %d messages", queue, len(got), n)
			}
			got = append(got, string(d.Body))
			lastTag = d.DeliveryTag
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages from %s, then nothing for 10 s", len(got), n, queue)
		}
	}
	if err := ch.Ack(lastTag, true); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestLANConfirmsSurviveKill9OfHome declares a durable queue through a
// client of node A (so A is its home), publishes persistent messages
// with confirms to it through node B, and kills A with SIGKILL at a
// random point of the publishing. Publishes after the kill must not be
// acked; restarted on its data dir, A serves the queue to node C, and
// every message B acked is there, exactly once (nacked and unconfirmed
// ones may or may not be), and nothing that was never published.
func TestLANConfirmsSurviveKill9OfHome(t *testing.T) {
	began := time.Now()
	rng := rand.New(rand.NewPCG(lanSeed(t), 0))
	l := formLAN(t, 3)
	order := rng.Perm(3)
	home, pubNode, conNode := l.nodes[order[0]], l.nodes[order[1]], l.nodes[order[2]]
	const n, window = 2000, 256
	killAfter := n/10 + rng.IntN(n*8/10) // the kill follows this publish
	t.Logf("queue on %s, publisher on %s, consumer on %s; kill -9 of %s after publish %d of %d",
		home.name, pubNode.name, conNode.name, home.name, killAfter, n)
	const q = "confirmed"
	if err := home.declare(q); err != nil {
		t.Fatal(err)
	}

	pc, pch := pubNode.channel(t)
	if _, err := pch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare on %s after the declare on %s: %v", pubNode.name, home.name, err)
	}
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := pch.NotifyPublish(make(chan rmq.Confirmation, n))
	closed := pc.NotifyClose(make(chan *rmq.Error, 1))
	const (
		pending = iota
		acked
		nacked
	)
	outcome := make([]int, n+1) // by sequence number (= body)
	resolved := 0
	take := func(timeout time.Duration) bool {
		select {
		case c, ok := <-confirms:
			if !ok {
				t.Fatalf("the publisher's channel closed after %d confirms", resolved)
			}
			if c.DeliveryTag < 1 || c.DeliveryTag > n || outcome[c.DeliveryTag] != pending {
				t.Fatalf("confirm of publish %d (ack %v): unexpected", c.DeliveryTag, c.Ack)
			}
			outcome[c.DeliveryTag] = nacked
			if c.Ack {
				outcome[c.DeliveryTag] = acked
			}
			resolved++
			return true
		case err := <-closed:
			t.Fatalf("the publisher's connection closed: %v", err)
		case <-time.After(timeout):
		}
		return false
	}
	var killedAt time.Time
	publishing := time.Now()
	for i := 1; i <= n; i++ {
		if seq := pch.GetNextPublishSeqNo(); seq != uint64(i) {
			t.Fatalf("next publish sequence number %d, want %d", seq, i)
		}
		if err := pch.PublishWithContext(context.Background(), "", q, false, false,
			rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatalf("publish %d through %s: %v", i, pubNode.name, err)
		}
		if i == killAfter {
			home.proc.kill()
			killedAt = time.Now()
		}
		for i-resolved > window {
			if !take(10 * time.Second) {
				t.Fatalf("publish %d: %d publishes unconfirmed for 10 s", i, i-resolved)
			}
		}
	}
	// Every publish is answered: the home's fsync, or a nack when the
	// link to it broke or cannot be made. Unanswered ones are counted.
	deadline := time.Now().Add(15 * time.Second)
	for resolved < n && time.Now().Before(deadline) {
		take(time.Until(deadline))
	}
	var ackedN, nackedN, unconfirmed, ackedAfterKill []int
	for i := 1; i <= n; i++ {
		switch outcome[i] {
		case acked:
			ackedN = append(ackedN, i)
			if i > killAfter {
				ackedAfterKill = append(ackedAfterKill, i)
			}
		case nacked:
			nackedN = append(nackedN, i)
		default:
			unconfirmed = append(unconfirmed, i)
		}
	}
	t.Logf("publishing took %s: %d acked, %d nacked, %d unconfirmed; the last ack is for publish %d",
		time.Since(publishing).Round(time.Millisecond), len(ackedN), len(nackedN), len(unconfirmed), last(ackedN))
	if len(ackedAfterKill) > 0 {
		t.Errorf("%d publishes made after %s was killed were acked (first: %v): acked and lost",
			len(ackedAfterKill), home.name, head(ackedAfterKill))
	}

	// While the home is down another node answers RabbitMQ's 404.
	err := conNode.hasQueue(q)
	var ae *rmq.Error
	if !errors.As(err, &ae) || ae.Code != rmq.NotFound || !strings.Contains(ae.Reason, home.name) || !strings.Contains(ae.Reason, "down or inaccessible") {
		t.Errorf("passive declare on %s with the home %s killed = %v; want 404 home node %s … down or inaccessible", conNode.name, home.name, err, home.name)
	}

	home.start()
	d := within(t, 20*time.Second, fmt.Sprintf("%s serves the queue of the restarted %s", conNode.name, home.name), func() error { return conNode.hasQueue(q) })
	t.Logf("%s restarted %s after the kill; %s reached the queue %s later",
		home.name, time.Since(killedAt).Round(time.Millisecond), conNode.name, d.Round(time.Millisecond))
	cc, cch := conNode.channel(t)
	info, err := cch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	bodies := consumeBodies(t, cc, q, info.Messages)
	if rest, err := cch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil || rest.Messages != 0 {
		t.Fatalf("after consuming %d messages the queue has %d more (%v)", len(bodies), rest.Messages, err)
	}
	seen := make([]int, n+1)
	var strange []string
	for _, b := range bodies {
		i, err := strconv.Atoi(b)
		if err != nil || i < 1 || i > n {
			strange = append(strange, b)
			continue
		}
		seen[i]++
	}
	var lost, twice []int
	nackedThere, unconfirmedThere := 0, 0
	for i := 1; i <= n; i++ {
		switch {
		case seen[i] > 1:
			twice = append(twice, i)
		case seen[i] == 0 && outcome[i] == acked:
			lost = append(lost, i)
		case seen[i] == 1 && outcome[i] == nacked:
			nackedThere++
		case seen[i] == 1 && outcome[i] == pending:
			unconfirmedThere++
		}
	}
	t.Logf("%s drained %d messages: %d acked ones lost, %d nacked and %d unconfirmed ones kept; test took %s",
		conNode.name, len(bodies), len(lost), nackedThere, unconfirmedThere, time.Since(began).Round(time.Millisecond))
	if len(lost) > 0 {
		t.Errorf("%d acked messages are not in the queue after the restart of %s (first: %v)", len(lost), home.name, head(lost))
	}
	if len(twice) > 0 || len(strange) > 0 {
		t.Errorf("messages more than once: %v; messages never published: %q", head(twice), strange)
	}
}

// last is the last of s, or 0.
func last(s []int) int {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

// head is the first ten of s, for messages.
func head(s []int) []int { return s[:min(len(s), 10)] }

// TestLANMinorityServesItsQueues cuts off a node X that is home to a
// queue, a follower and then the leader: a client connected to X
// publishes to it with confirms, consumes and gets from it, and
// passive-declares it, while a metadata change on X is refused with an
// AMQP error and is applied on no node during the cut. After the heal
// every node holds the same definitions, and the messages X took
// meanwhile are served to a client of another node.
//
// The change refused on the cut follower reached no leader, so it is
// never applied. The one refused on the cut leader is in that leader's
// raft log, uncommitted: healed before the others elect a leader of
// their own (as here), the old leader may win the next election and
// commit it, as raft does with the entries of a deposed leader; so after
// that heal it may be on every node, or on none (TestLANCluster heals
// after the majority elected another leader, which drops it).
func TestLANMinorityServesItsQueues(t *testing.T) {
	began := time.Now()
	l := formLAN(t, 3)
	_, followers := l.roles()
	minorityServes(t, l, followers[0], followers[1], false)
	leader, followers := l.roles()
	minorityServes(t, l, leader, followers[0], true)
	t.Logf("test took %s", time.Since(began).Round(time.Millisecond))
}

// minorityServes cuts x off, checks that it serves a queue homed on it
// to its own client while it refuses a declare, heals, and checks that
// other serves the rest of the queue. leads says x is the leader: its
// refused declare may be applied after the heal.
func minorityServes(t *testing.T, l *lan, x, other *lanNode, leads bool) {
	t.Helper()
	q := "local-on-" + x.name
	if err := x.declare(q); err != nil {
		t.Fatal(err)
	}
	if err := other.hasQueue(q); err != nil {
		t.Fatal(err)
	}

	l.ip(x.ns, "link", "set", "eth0", "down")
	cut := time.Now()
	refused := make(chan error, 1)
	go func() { refused <- x.declare("refused-on-" + x.name) }()

	xc, ch := x.channel(t)
	if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare of its own queue on %s, cut off: %v", x.name, err)
	}
	var sent []string
	for i := range 100 {
		sent = append(sent, fmt.Sprintf("during-the-cut-%d", i))
	}
	publishBodiesConfirmed(t, ch, q, sent)
	role := "follower"
	if leads {
		role = "leader"
	}
	t.Logf("%s %s, cut off, confirmed %d publishes to its queue in %s", role, x.name, len(sent), time.Since(cut).Round(time.Millisecond))
	got := consumeBodies(t, xc, q, 40)
	d, ok, err := ch.Get(q, false)
	if err != nil || !ok {
		t.Fatalf("basic.get on %s, cut off: ok %v, %v", x.name, ok, err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	got = append(got, string(d.Body))
	if strings.Join(got, ",") != strings.Join(sent[:41], ",") {
		t.Fatalf("%s, cut off, delivered %q; want the first 41 published, in order", x.name, got)
	}
	t.Logf("%s, cut off, delivered 41 of them %s after the cut", x.name, time.Since(cut).Round(time.Millisecond))

	var ae *rmq.Error
	select {
	case err := <-refused:
		if !errors.As(err, &ae) || ae.Code != rmq.InternalError {
			t.Fatalf("a declare on %s, cut off, = %v; want a 541 INTERNAL_ERROR", x.name, err)
		}
		t.Logf("meanwhile %s refused a declare %s after the cut: %s", x.name, time.Since(cut).Round(time.Millisecond), ae.Reason)
	case <-time.After(10 * time.Second):
		t.Fatalf("a declare on %s, cut off, unanswered 10 s after the cut", x.name)
	}

	refusedQ := "refused-on-" + x.name
	for _, nd := range []*lanNode{x, other} {
		if defs, err := nd.definitions(); err != nil || strings.Contains(defs, refusedQ) {
			t.Fatalf("the declare refused on %s is in the definitions of %s during the cut (%v)", x.name, nd.name, err)
		}
	}

	l.ip(x.ns, "link", "set", "eth0", "up")
	healed := time.Now()
	within(t, 30*time.Second, "one cluster again", func() error { _, err := agreed(l.nodes, 3); return err })
	within(t, 15*time.Second, "identical definitions after the heal", func() error { return sameDefinitions(l.nodes) })
	defs, err := x.definitions()
	if err != nil {
		t.Fatal(err)
	}
	switch applied := strings.Contains(defs, refusedQ); {
	case applied && !leads:
		t.Fatalf("the declare refused on the cut follower %s is in the definitions after the heal", x.name)
	case applied:
		t.Logf("the declare refused on the cut leader %s was committed after the heal, on every node", x.name)
	}
	within(t, 15*time.Second, other.name+" reaches the queue on "+x.name, func() error { return other.hasQueue(q) })
	t.Logf("healed in %s", time.Since(healed).Round(time.Millisecond))
	oc, _ := other.channel(t)
	rest := consumeBodies(t, oc, q, len(sent)-len(got))
	if strings.Join(rest, ",") != strings.Join(sent[len(got):], ",") {
		t.Fatalf("after the heal %s got %q from the queue on %s; want the other %d published during the cut", other.name, rest, x.name, len(sent)-len(got))
	}
}

// TestLANRejoinWithEmptyDataDir stops a follower, wipes its data dir and
// starts it again under the same name with its seed: it rejoins the
// cluster, catches up on everything (identical definitions, changes made
// while it was away included), and serves: its own queue, a queue on
// another node, and a new declare.
func TestLANRejoinWithEmptyDataDir(t *testing.T) {
	began := time.Now()
	l := formLAN(t, 3)
	_, followers := l.roles()
	f, other := followers[0], followers[1]
	// A queue homed on f, and one on other.
	if err := f.declare("home-on-wiped"); err != nil {
		t.Fatal(err)
	}
	if err := other.declare("home-on-other"); err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "identical definitions", func() error { return sameDefinitions(l.nodes) })

	if err := f.proc.stop(); err != nil {
		t.Fatalf("stop %s: %v", f.name, err)
	}
	for i := range 3 {
		if err := other.declare(fmt.Sprintf("while-%s-away-%d", f.name, i)); err != nil {
			t.Fatalf("declare with %s stopped: %v", f.name, err)
		}
	}
	if err := os.RemoveAll(f.dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.start() // the same --node-name and --cluster-join
	restarted := time.Now()
	d := within(t, 20*time.Second, f.name+" caught up with an empty data dir", func() error {
		if err := f.hasQueue(fmt.Sprintf("while-%s-away-2", f.name)); err != nil {
			return err
		}
		return sameDefinitions(l.nodes)
	})
	t.Logf("%s, wiped, caught up %s after its start", f.name, d.Round(time.Millisecond))
	within(t, 20*time.Second, "three voters again", func() error { _, err := agreed(l.nodes, 3); return err })
	var nodes []lanView
	if err := other.get("/api/nodes", &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("%s lists %d nodes after %s rejoined: %+v", other.name, len(nodes), f.name, nodes)
	}
	t.Logf("%s is a running voter again %s after its start", f.name, time.Since(restarted).Round(time.Millisecond))

	// It serves: its own (now empty) queue to another node's client, the
	// other node's queue to its own client, and a new declare.
	fc, fch := f.channel(t)
	_, och := other.channel(t)
	publishBodiesConfirmed(t, och, "home-on-wiped", []string{"to-the-wiped-node"})
	if got := consumeBodies(t, fc, "home-on-wiped", 1); got[0] != "to-the-wiped-node" {
		t.Fatalf("%s delivered %q from its queue", f.name, got)
	}
	publishBodiesConfirmed(t, fch, "home-on-other", []string{"from-the-wiped-node"})
	if got := consumeBodies(t, fc, "home-on-other", 1); got[0] != "from-the-wiped-node" {
		t.Fatalf("%s delivered %q from the queue on %s", f.name, got, other.name)
	}
	if err := f.declare("declared-on-the-wiped-node"); err != nil {
		t.Fatalf("declare on %s after it rejoined: %v", f.name, err)
	}
	within(t, 10*time.Second, "identical definitions after a declare on "+f.name, func() error { return sameDefinitions(l.nodes) })
	names := make([]string, 0, len(nodes))
	for _, v := range nodes {
		names = append(names, v.Name)
	}
	sort.Strings(names)
	t.Logf("members %v; test took %s", names, time.Since(began).Round(time.Millisecond))
}
