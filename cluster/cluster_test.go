package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/cluster"
	"github.com/warrenmq/warren/cluster/clustertest"
)

func dial(t *testing.T, url string) *rmq.Connection {
	t.Helper()
	c, err := rmq.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func channel(t *testing.T, n *clustertest.Node) *rmq.Channel {
	t.Helper()
	ch, err := dial(t, n.URL).Channel()
	if err != nil {
		t.Fatalf("channel on %s: %v", n.Name, err)
	}
	return ch
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameMetadata checks that every running node holds byte for byte the
// same metadata once caught up with the cluster.
func sameMetadata(t *testing.T, c *clustertest.Cluster) {
	t.Helper()
	var first []byte
	var firstName string
	for _, n := range c.Running() {
		must(t, n.Server.MetaLog().CatchUp(context.Background()))
		snap := n.Server.MetadataSnapshot()
		if first == nil {
			first, firstName = snap, n.Name
			continue
		}
		if !bytes.Equal(snap, first) {
			t.Fatalf("metadata of %s (%d bytes) differs from that of %s (%d bytes)", n.Name, len(snap), firstName, len(first))
		}
	}
}

// TestFormationInAnyOrder starts three nodes in several orders, the
// founder (node 0, no seeds) first, in the middle and last: each time
// they form one cluster of three voters with one leader, and the default
// user and vhost exist once, on every node.
func TestFormationInAnyOrder(t *testing.T) {
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			c := clustertest.New(t, 3)
			for _, i := range order {
				c.Nodes[i].Start()
			}
			c.WaitFormed(10 * time.Second)
			for _, n := range c.Nodes {
				ms, err := n.Cluster.Members()
				must(t, err)
				leaders := 0
				for _, m := range ms {
					if !m.Running || !m.Voter || m.Joining {
						t.Errorf("%s sees %+v", n.Name, m)
					}
					if m.Leader {
						leaders++
					}
				}
				if len(ms) != 3 || leaders != 1 {
					t.Errorf("%s sees %d members and %d leaders: %+v", n.Name, len(ms), leaders, ms)
				}
				dial(t, n.URL).Close() // guest and / exist here
			}
			sameMetadata(t, c)
		})
	}
}

// TestMetadataReplicated makes one change of each kind on different
// nodes, followers and leader, and finds all of them on every node: the
// exported definitions and the metadata snapshots are identical.
func TestMetadataReplicated(t *testing.T) {
	c := clustertest.Start(t, 3)
	leader := c.Leader(5 * time.Second)
	f := c.Followers(leader)

	ch := channel(t, f[0])
	must(t, ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil))
	_, err := ch.QueueDeclare("orders.eu", true, false, false, false, rmq.Table{"x-max-length": int32(100)})
	must(t, err)
	must(t, ch.QueueBind("orders.eu", "eu.#", "orders", false, nil))

	must(t, f[1].Server.PutUser(broker.User{Name: "app", PasswordHash: broker.HashPassword("pw"), Tags: []string{"management"}}))
	_, err = f[1].Server.AddVhost("staging")
	must(t, err)
	must(t, f[1].Server.SetPermission(broker.Permission{User: "app", Vhost: "staging", Configure: ".*", Write: ".*", Read: ".*"}))
	must(t, leader.Server.Vhost("/").PutPolicy(broker.Policy{Name: "ttl", Pattern: "^orders\\.", ApplyTo: "queues", Priority: 1,
		Definition: map[string]any{"message-ttl": float64(60000)}}))

	sameMetadata(t, c)
	var want []byte
	for _, n := range c.Nodes {
		var d bytes.Buffer
		defs, err := n.Server.ExportDefinitions("")
		must(t, err)
		fmt.Fprintf(&d, "%+v", defs)
		if want == nil {
			want = d.Bytes()
		} else if !bytes.Equal(d.Bytes(), want) {
			t.Fatalf("definitions of %s differ:\n%s\nwant\n%s", n.Name, d.Bytes(), want)
		}
		// Each node runs what it holds: the user logs in to the new
		// vhost, the queue is there with its policy.
		url := strings.Replace(n.URL, "guest:guest", "app:pw", 1) + "staging"
		dial(t, url).Close()
		q := n.Server.Vhost("/").Queue("orders.eu")
		if q == nil {
			t.Fatalf("%s runs no queue orders.eu", n.Name)
		}
	}
}

// TestReadYourWrites declares a queue on one node and at once declares it
// passively on the other two, a few hundred times, rotating the nodes:
// never a 404. The declares on followers are forwarded to the leader.
func TestReadYourWrites(t *testing.T) {
	c := clustertest.Start(t, 3)
	chs := make([]*rmq.Channel, 3)
	for i, n := range c.Nodes {
		chs[i] = channel(t, n)
	}
	start := time.Now()
	const rounds = 300
	for i := range rounds {
		name := fmt.Sprintf("ryw-%d", i)
		if _, err := chs[i%3].QueueDeclare(name, true, false, false, false, nil); err != nil {
			t.Fatalf("declare %s on %s: %v", name, c.Nodes[i%3].Name, err)
		}
		for _, j := range []int{(i + 1) % 3, (i + 2) % 3} {
			if _, err := chs[j].QueueDeclarePassive(name, true, false, false, false, nil); err != nil {
				t.Fatalf("round %d: passive declare of %s on %s right after declare-ok on %s: %v", i, name, c.Nodes[j].Name, c.Nodes[i%3].Name, err)
			}
		}
	}
	t.Logf("%d declares and %d passive declares in %s", rounds, 2*rounds, time.Since(start))
	sameMetadata(t, c)
}

// TestCheckErrorsCrossNodes checks that a refused op gives the client of
// a follower RabbitMQ's error, code and text, exactly as the leader's
// client gets it, and changes nothing.
func TestCheckErrorsCrossNodes(t *testing.T) {
	c := clustertest.Start(t, 3)
	leader := c.Leader(5 * time.Second)
	follower := c.Followers(leader)[0]
	_, err := channel(t, leader).QueueDeclare("q", true, false, false, false, nil)
	must(t, err)
	var errs []*rmq.Error
	for _, n := range []*clustertest.Node{leader, follower} {
		_, err := channel(t, n).QueueDeclare("q", false, false, false, false, nil)
		var ae *rmq.Error
		if !errors.As(err, &ae) {
			t.Fatalf("inequivalent declare on %s: %v", n.Name, err)
		}
		errs = append(errs, ae)
	}
	if errs[0].Code != 406 || errs[0].Code != errs[1].Code || errs[0].Reason != errs[1].Reason {
		t.Fatalf("leader's client got %d %q, follower's %d %q", errs[0].Code, errs[0].Reason, errs[1].Code, errs[1].Reason)
	}
	sameMetadata(t, c)
}

// TestLeaderLoss stops the leader: the other two elect a new one and
// declares go on from both, visible on both. A queue homed on a node
// that stays up is still there; one homed on the stopped leader is
// refused with RabbitMQ's 404 for a node that is down.
func TestLeaderLoss(t *testing.T) {
	c := clustertest.Start(t, 3)
	old := c.Leader(5 * time.Second)
	_, err := channel(t, c.Followers(old)[0]).QueueDeclare("before", true, false, false, false, nil)
	must(t, err)
	_, err = channel(t, old).QueueDeclare("on-leader", true, false, false, false, nil)
	must(t, err)
	old.Stop()
	stopped := time.Now()
	leader := c.Leader(10 * time.Second)
	t.Logf("new leader %s %s after the old one stopped", leader.Name, time.Since(stopped))
	for i, n := range c.Running() {
		ch := channel(t, n)
		if _, err := ch.QueueDeclarePassive("before", true, false, false, false, nil); err != nil {
			t.Fatalf("%s lost a queue: %v", n.Name, err)
		}
		_, err := ch.QueueDeclarePassive("on-leader", true, false, false, false, nil)
		var ae *rmq.Error
		if !errors.As(err, &ae) || ae.Code != 404 || !strings.Contains(ae.Reason, "home node '"+old.Name+"'") {
			t.Fatalf("%s: passive declare of a queue on the stopped node: %v", n.Name, err)
		}
		ch = channel(t, n)
		name := fmt.Sprintf("after-%d", i)
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			t.Fatalf("declare on %s without the old leader: %v", n.Name, err)
		}
		for _, o := range c.Running() {
			if _, err := channel(t, o).QueueDeclarePassive(name, true, false, false, false, nil); err != nil {
				t.Fatalf("%s does not see %s declared on %s: %v", o.Name, name, n.Name, err)
			}
		}
	}
	ms, err := leader.Cluster.Members()
	must(t, err)
	for _, m := range ms {
		if m.Name == old.Name && (m.Running || !m.Voter) {
			t.Fatalf("the stopped leader should stay a voter, not running: %+v", m)
		}
	}
	sameMetadata(t, c)
}

// TestRestartCatchesUp stops a node, changes the metadata while it is
// down (enough for the leader to snapshot and compact its log), and
// restarts it on its data dir: it has at once what it knew committed, then catches
// up with the rest (snapshot and log tail), identical to the others.
func TestRestartCatchesUp(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.WithConfig(func(_ int, cc *cluster.Config, _ *broker.Config) {
		cc.SnapshotThreshold = 16
		cc.TrailingLogs = 4
		cc.SnapshotInterval = 50 * time.Millisecond
	}))
	leader := c.Leader(5 * time.Second)
	down := c.Followers(leader)[0]
	ch := channel(t, leader)
	for i := range 5 {
		_, err := ch.QueueDeclare(fmt.Sprintf("before-%d", i), true, false, false, false, nil)
		must(t, err)
	}
	c.Eventually(5*time.Second, "the node to apply the early declares", func() error {
		if down.Server.Vhost("/").Queue("before-4") == nil {
			return errors.New("before-4 not there yet")
		}
		return nil
	})
	down.Stop()
	for i := range 60 {
		_, err := ch.QueueDeclare(fmt.Sprintf("while-down-%d", i), true, false, false, false, nil)
		must(t, err)
		if i%10 == 0 {
			_, err = ch.QueueDelete(fmt.Sprintf("before-%d", i/10), false, false, false)
			must(t, err)
		}
	}
	down.Start()
	// What it knew committed when it stopped is there before any
	// catch-up. (A follower learns that an entry is committed with the
	// next one, so the last declare, before-4, may come from the leader.)
	if down.Server.Vhost("/").Queue("before-3") == nil {
		t.Fatal("the restarted node did not restore its own metadata")
	}
	sameMetadata(t, c)
	if down.Server.Vhost("/").Queue("while-down-59") == nil || down.Server.Vhost("/").Queue("before-0") != nil {
		t.Fatal("the restarted node runs stale queues")
	}
}

// TestNoMajorityFailsFast stops two of three nodes: a declare on the last
// one fails within the propose timeout with 541 saying there is no
// majority, and changes nothing; reads of what it has still work.
func TestNoMajorityFailsFast(t *testing.T) {
	const timeout = time.Second
	c := clustertest.Start(t, 3, clustertest.WithConfig(func(_ int, cc *cluster.Config, _ *broker.Config) {
		cc.ProposeTimeout = timeout
	}))
	last := c.Nodes[2]
	_, err := channel(t, last).QueueDeclare("kept", true, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)
	ch := channel(t, last)
	c.Nodes[0].Stop()
	c.Nodes[1].Stop()

	start := time.Now()
	_, err = ch.QueueDeclare("refused", true, false, false, false, nil)
	took := time.Since(start)
	var ae *rmq.Error
	if !errors.As(err, &ae) || ae.Code != 541 || !strings.Contains(ae.Reason, "majority") {
		t.Fatalf("declare without a majority: %v", err)
	}
	if took > 3*timeout {
		t.Fatalf("declare without a majority failed after %s", took)
	}
	t.Logf("refused after %s: %s", took, ae.Reason)

	ch = channel(t, last)
	if _, err := ch.QueueDeclarePassive("kept", true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare of a known queue without a majority: %v", err)
	}
	start = time.Now()
	_, err = ch.QueueDeclarePassive("refused", true, false, false, false, nil)
	if !errors.As(err, &ae) || ae.Code != 404 {
		t.Fatalf("passive declare of the refused queue: %v", err)
	}
	if took := time.Since(start); took > 3*timeout {
		t.Fatalf("a miss without a majority was answered after %s", took)
	}
}

// TestForget stops a node and forgets it: it leaves the raft
// configuration; a running node cannot be forgotten.
func TestForget(t *testing.T) {
	c := clustertest.Start(t, 3)
	gone := c.Nodes[2]
	if err := c.Nodes[1].Cluster.Forget(context.Background(), gone.Name); err == nil {
		t.Fatal("forgot a running node")
	}
	gone.Stop()
	c.Eventually(5*time.Second, "the gossip to see the node stopped", func() error {
		ms, err := c.Nodes[1].Cluster.Members()
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == gone.Name && m.Running {
				return errors.New("still running")
			}
		}
		return nil
	})
	must(t, c.Nodes[1].Cluster.Forget(context.Background(), gone.Name))
	for _, n := range c.Running() {
		c.Eventually(5*time.Second, "the member forgotten", func() error {
			ms, err := n.Cluster.Members()
			if err != nil {
				return err
			}
			if len(ms) != 2 {
				return fmt.Errorf("%s sees %+v", n.Name, ms)
			}
			return nil
		})
	}
	_, err := channel(t, c.Nodes[1]).QueueDeclare("after-forget", true, false, false, false, nil)
	must(t, err)
}

// TestVoterCap starts four nodes with at most three voters: the fourth
// replicates as a non-voter, and is promoted when a stopped voter is
// forgotten.
func TestVoterCap(t *testing.T) {
	c := clustertest.New(t, 4, clustertest.WithConfig(func(_ int, cc *cluster.Config, _ *broker.Config) {
		cc.MaxVoters = 3
	}))
	for _, n := range c.Nodes {
		n.Start()
	}
	voters := func(n *clustertest.Node, want int, members int) func() error {
		return func() error {
			ms, err := n.Cluster.Members()
			if err != nil {
				return err
			}
			v := 0
			for _, m := range ms {
				if m.Voter {
					v++
				}
				if m.Joining {
					return fmt.Errorf("%s still joining", m.Name)
				}
			}
			if v != want || len(ms) != members {
				return fmt.Errorf("%s sees %d voters of %d members, want %d of %d: %+v", n.Name, v, len(ms), want, members, ms)
			}
			return nil
		}
	}
	for _, n := range c.Nodes {
		c.Eventually(10*time.Second, "three voters and a non-voter", voters(n, 3, 4))
	}
	_, err := channel(t, c.Nodes[3]).QueueDeclare("from-any", true, false, false, false, nil)
	must(t, err)
	sameMetadata(t, c)

	leader := c.Leader(5 * time.Second)
	var gone *clustertest.Node
	for _, n := range c.Followers(leader) {
		ms, err := leader.Cluster.Members()
		must(t, err)
		for _, m := range ms {
			if m.Name == n.Name && m.Voter {
				gone = n
			}
		}
	}
	gone.Stop()
	c.Eventually(10*time.Second, "forget the stopped voter", func() error {
		return leader.Cluster.Forget(context.Background(), gone.Name)
	})
	c.Eventually(10*time.Second, "the non-voter promoted", voters(leader, 3, 3))
}

// TestRestartKeepsLocalMessages publishes persistent messages to durable
// queues on a node (queues are still local to each node) and restarts
// it: the messages are there again, both for a queue the node replays
// from its own log at start and for one it learns from the leader after
// (the last declare before the stop, not yet known committed there).
func TestRestartKeepsLocalMessages(t *testing.T) {
	c := clustertest.Start(t, 3)
	leader := c.Leader(5 * time.Second)
	n := c.Followers(leader)[0]
	ch := channel(t, n)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 2))
	for _, q := range []string{"early", "last"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		must(t, err)
	}
	for _, q := range []string{"early", "last"} {
		must(t, ch.Publish("", q, false, false, rmq.Publishing{DeliveryMode: rmq.Persistent, Body: []byte("kept in " + q)}))
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish to %s not confirmed", q)
		}
	}
	n.Restart()
	ch = channel(t, n)
	for _, q := range []string{"early", "last"} {
		m, ok, err := ch.Get(q, true)
		if err != nil || !ok || string(m.Body) != "kept in "+q {
			t.Fatalf("get from %s after restart: ok=%v err=%v body=%q", q, ok, err, m.Body)
		}
	}
}
