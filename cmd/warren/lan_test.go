//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sys/unix"
)

// A LAN of three nodes, each a warren process in a Linux network
// namespace of its own: node i has 10.77.0.i on its eth0, a veth whose
// other end is on a bridge in a fourth namespace. The test talks to each
// node through that node's own loopback (its sockets are opened inside
// the node's namespace), so a node cut off from the others stays
// reachable by the test. Needs root and iproute2; the test skips,
// saying why, where namespaces cannot be made.

// lan is the namespaces and the nodes of one test.
type lan struct {
	t      *testing.T
	prefix string // namespace names: prefix+"n1"…, prefix+"br"
	nodes  []*lanNode
}

// lanNode is one node: its namespace, its address, its process.
type lanNode struct {
	lan     *lan
	i       int // 1-based
	name    string
	ns      string
	ip      string
	dataDir string
	args    []string
	proc    *process
	past    []*process // earlier runs, for their logs
	api     *http.Client
}

const lanGossipPort = "25672"

// newLAN creates the namespaces, the bridge and the veths, or skips the
// test; everything is deleted when the test ends, whatever happens.
func newLAN(t *testing.T, n int) *lan {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the LAN test needs root to create network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the LAN test needs iproute2's ip (Debian: apt-get install iproute2; .ci/run installs it)")
	}
	l := &lan{t: t, prefix: fmt.Sprintf("wrn%d-", os.Getpid()%100000)}
	br := l.prefix + "br"
	if out, err := exec.Command("ip", "netns", "add", br).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here (%v: %s); the LAN test needs CAP_SYS_ADMIN and CAP_NET_ADMIN", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { l.deleteNamespaces(n) })
	l.ip(br, "link", "set", "lo", "up")
	l.ip(br, "link", "add", "br0", "type", "bridge")
	l.ip(br, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		nd := &lanNode{lan: l, i: i, name: fmt.Sprintf("warren@n%d", i), ns: fmt.Sprintf("%sn%d", l.prefix, i), ip: fmt.Sprintf("10.77.0.%d", i), dataDir: t.TempDir()}
		if out, err := exec.Command("ip", "netns", "add", nd.ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", nd.ns, err, out)
		}
		peer := fmt.Sprintf("p%d", i)
		l.ip(nd.ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", br)
		l.ip(br, "link", "set", peer, "master", "br0", "up")
		l.ip(nd.ns, "addr", "add", nd.ip+"/24", "dev", "eth0")
		l.ip(nd.ns, "link", "set", "eth0", "up")
		l.ip(nd.ns, "link", "set", "lo", "up")
		nd.api = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return dialInNetns(ctx, nd.ns, addr) },
		}}
		l.nodes = append(l.nodes, nd)
	}
	return l
}

// ip runs "ip -n ns args…", failing the test if it fails.
func (l *lan) ip(ns string, args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
}

func (l *lan) deleteNamespaces(n int) {
	names := []string{l.prefix + "br"}
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("%sn%d", l.prefix, i))
	}
	for _, ns := range names {
		if err := exec.Command("ip", "netns", "del", ns).Run(); err != nil {
			l.t.Logf("ip netns del %s: %v", ns, err)
		}
	}
}

// dialInNetns opens a TCP connection from inside the namespace ns: the
// socket is made on a thread switched into it, and stays in it.
func dialInNetns(ctx context.Context, ns, addr string) (net.Conn, error) {
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return nil, err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer orig.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	var d net.Dialer
	c, dialErr := d.DialContext(ctx, "tcp", addr)
	if err := setns(orig); err != nil {
		// Leave the thread locked: it goes away with this goroutine.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("leave namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return c, dialErr
}

func setns(f *os.File) error { return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET) }

// start runs the node's warren in its namespace and waits until it
// accepts clients; node 1 founds the cluster, the others join it.
func (nd *lanNode) start() {
	t := nd.lan.t
	t.Helper()
	if nd.args == nil {
		nd.args = []string{"--node-name", nd.name, "--data-dir", nd.dataDir, "--amqp-listen", ":5672", "--mgmt-listen", ":15672",
			"--cluster-listen", nd.ip + ":" + lanGossipPort}
		if nd.i > 1 {
			nd.args = append(nd.args, "--cluster-join", "10.77.0.1:"+lanGossipPort)
		}
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", nd.ns, warrenBin}, nd.args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, DataDir: nd.dataDir, exited: make(chan error, 1), logs: &strings.Builder{}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", nd.name, err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if !once && strings.Contains(line, "warren started") {
				once = true
				close(started)
			}
		}
		p.exited <- cmd.Wait()
	}()
	select {
	case <-started:
	case err := <-p.exited:
		t.Fatalf("%s exited at start: %v\n%s", nd.name, err, p.logs.String())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not start within 30 s", nd.name)
	}
	t.Cleanup(p.kill)
	if nd.proc != nil {
		nd.past = append(nd.past, nd.proc)
	}
	nd.proc = p
}

// formLAN makes a LAN of n nodes, starts them and waits until they agree
// on a leader. If the test fails, the nodes are killed and the logs of
// every run of every node go to the test's log.
func formLAN(t *testing.T, n int) *lan {
	t.Helper()
	l := newLAN(t, n)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, nd := range l.nodes {
			if nd.proc != nil {
				nd.proc.kill() // its log is complete once it exited
			}
			for i, p := range append(nd.past, nd.proc) {
				if p != nil {
					t.Logf("log of %s (run %d):\n%s", nd.name, i+1, p.logs.String())
				}
			}
		}
	})
	for _, nd := range l.nodes {
		nd.start()
	}
	d := within(t, 30*time.Second, "formation", func() error { _, err := agreed(l.nodes, n); return err })
	t.Logf("%d nodes formed a cluster in %s", n, d.Round(time.Millisecond))
	return l
}

// roles returns the node that leads the agreed cluster and the others.
func (l *lan) roles() (leader *lanNode, others []*lanNode) {
	l.t.Helper()
	name, err := agreed(l.nodes, len(l.nodes))
	if err != nil {
		l.t.Fatal(err)
	}
	for _, nd := range l.nodes {
		if nd.name == name {
			leader = nd
		} else {
			others = append(others, nd)
		}
	}
	return leader, others
}

// amqp opens a connection to the node (through its loopback).
func (nd *lanNode) amqp() (*rmq.Connection, error) {
	return rmq.DialConfig("amqp://guest:guest@127.0.0.1:5672/", rmq.Config{
		Dial: func(_, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return dialInNetns(ctx, nd.ns, addr)
		},
	})
}

// get reads a management API path as JSON into v.
func (nd *lanNode) get(path string, v any) error {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:15672"+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := nd.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s on %s: %d %s", path, nd.name, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// lanView is what one node says of the cluster.
type lanView struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	Raft    struct {
		Suffrage string `json:"suffrage"`
		Leader   bool   `json:"leader"`
		State    string `json:"state"`
	} `json:"raft"`
}

// leaderSeen returns the leader the node sees among its running voters,
// and how many of them there are.
func (nd *lanNode) leaderSeen() (leader string, voters int, err error) {
	var nodes []lanView
	if err := nd.get("/api/nodes", &nodes); err != nil {
		return "", 0, err
	}
	for _, v := range nodes {
		if v.Running && v.Raft.Suffrage == "voter" {
			voters++
		}
		if v.Raft.Leader {
			leader = v.Name
		}
	}
	return leader, voters, nil
}

// definitions returns the node's /api/definitions, re-encoded with
// sorted keys (comparable byte for byte).
func (nd *lanNode) definitions() (string, error) {
	var d any
	if err := nd.get("/api/definitions", &d); err != nil {
		return "", err
	}
	b, err := json.Marshal(d)
	return string(b), err
}

// within polls check every 200 ms until it returns nil, failing the
// test with its last error after timeout.
func within(t *testing.T, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// agreed checks that nodes see the same leader, one of them, and want
// running voters.
func agreed(nodes []*lanNode, want int) (string, error) {
	leader := ""
	for _, nd := range nodes {
		l, voters, err := nd.leaderSeen()
		if err != nil {
			return "", err
		}
		if l == "" || (leader != "" && l != leader) || voters != want {
			return "", fmt.Errorf("%s sees leader %q and %d running voters (others: %q)", nd.name, l, voters, leader)
		}
		leader = l
	}
	for _, nd := range nodes {
		if nd.name == leader {
			return leader, nil
		}
	}
	return "", fmt.Errorf("the leader %s is not among %d nodes", leader, len(nodes))
}

// sameDefinitions checks that nodes export identical definitions.
func sameDefinitions(nodes []*lanNode) error {
	var first string
	for i, nd := range nodes {
		d, err := nd.definitions()
		if err != nil {
			return err
		}
		if i == 0 {
			first = d
		} else if d != first {
			return fmt.Errorf("the definitions of %s (%d bytes) differ from those of %s (%d bytes)", nd.name, len(d), nodes[0].name, len(first))
		}
	}
	return nil
}

// declare declares a durable queue on the node (a metadata change).
func (nd *lanNode) declare(queue string) error {
	c, err := nd.amqp()
	if err != nil {
		return err
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	return err
}

// hasQueue reports whether a passive declare of queue succeeds on the node.
func (nd *lanNode) hasQueue(queue string) error {
	c, err := nd.amqp()
	if err != nil {
		return err
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	return err
}

// TestLANCluster runs three warren processes on a LAN of network
// namespaces: they form one cluster; metadata declared on one node is on
// all; a follower killed with SIGKILL and restarted catches up on what
// changed meanwhile; the leader cut off from the others (its link down)
// refuses metadata changes with an AMQP error within the propose
// timeout while the other two elect a leader and go on, never two
// leaders at once; after the link is back every node holds the same
// definitions, without the refused change.
func TestLANCluster(t *testing.T) {
	began := time.Now()
	l := formLAN(t, 3)
	all := l.nodes

	// Metadata declared on node 1 reaches every node.
	c, err := l.nodes[0].amqp()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("billing", true, false, false, false, rmq.Table{"x-max-length": int32(1000)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("billing", "order.#", "orders", false, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	d := within(t, 10*time.Second, "identical definitions", func() error { return sameDefinitions(all) })
	t.Logf("replicated in %s", d.Round(time.Millisecond))
	if err := l.nodes[2].hasQueue("billing"); err != nil {
		t.Fatalf("queue declared on n1, passive declare on n3: %v", err)
	}

	// kill -9 a follower; change the metadata meanwhile; restart it.
	leader, err := agreed(all, 3)
	if err != nil {
		t.Fatal(err)
	}
	var follower, other *lanNode
	for _, nd := range all {
		switch {
		case nd.name == leader:
		case follower == nil:
			follower = nd
		default:
			other = nd
		}
	}
	follower.proc.kill()
	for i := range 5 {
		if err := other.declare(fmt.Sprintf("while-%s-down-%d", follower.name, i)); err != nil {
			t.Fatalf("declare with %s down: %v", follower.name, err)
		}
	}
	follower.start()
	d = within(t, 20*time.Second, follower.name+" caught up after kill -9", func() error {
		if err := follower.hasQueue(fmt.Sprintf("while-%s-down-4", follower.name)); err != nil {
			return err
		}
		return sameDefinitions(all)
	})
	t.Logf("%s restarted and caught up in %s", follower.name, d.Round(time.Millisecond))
	within(t, 20*time.Second, "three voters again", func() error { _, err := agreed(all, 3); return err })

	// Cut the leader off.
	leader, err = agreed(all, 3)
	if err != nil {
		t.Fatal(err)
	}
	var cut *lanNode
	var majority []*lanNode
	for _, nd := range all {
		if nd.name == leader {
			cut = nd
		} else {
			majority = append(majority, nd)
		}
	}
	l.ip(cut.ns, "link", "set", "eth0", "down")
	start := time.Now()
	err = cut.declare("refused-on-the-minority")
	refusedIn := time.Since(start)
	var ae *rmq.Error
	if !errors.As(err, &ae) || ae.Code != rmq.InternalError {
		t.Fatalf("a declare on %s, cut off, = %v; want a 541 INTERNAL_ERROR", cut.name, err)
	}
	t.Logf("%s, cut off, refused a declare in %s: %s", cut.name, refusedIn.Round(time.Millisecond), ae.Reason)
	if refusedIn > 5*time.Second {
		t.Errorf("the refusal took %s; the issue asks for at most 5 s (the propose timeout is 4 s)", refusedIn)
	}
	var newLeader string
	d = within(t, 20*time.Second, "a leader on the majority side", func() error {
		newLeader, err = agreed(majority, 2)
		return err
	})
	t.Logf("the majority agreed on %s in %s after the cut", newLeader, (time.Since(start)).Round(time.Millisecond))
	if err := majority[0].declare("accepted-on-the-majority"); err != nil {
		t.Fatalf("declare on the majority side: %v", err)
	}
	within(t, 10*time.Second, cut.name+" no longer leads", func() error {
		var self lanView
		if err := cut.get("/api/nodes/"+cut.name, &self); err != nil {
			return err
		}
		if self.Raft.State == "leader" {
			return fmt.Errorf("%s still says it leads, and %s leads the majority", cut.name, newLeader)
		}
		return nil
	})

	// Heal.
	l.ip(cut.ns, "link", "set", "eth0", "up")
	healed := time.Now()
	within(t, 30*time.Second, "one cluster again", func() error { _, err := agreed(all, 3); return err })
	within(t, 15*time.Second, "identical definitions after the heal", func() error { return sameDefinitions(all) })
	t.Logf("healed in %s", time.Since(healed).Round(time.Millisecond))
	defs, err := cut.definitions()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(defs, "refused-on-the-minority") || !strings.Contains(defs, "accepted-on-the-majority") {
		t.Fatalf("after the heal %s's definitions: refused queue present %v, accepted queue present %v",
			cut.name, strings.Contains(defs, "refused-on-the-minority"), strings.Contains(defs, "accepted-on-the-majority"))
	}
	if err := cut.hasQueue("accepted-on-the-majority"); err != nil {
		t.Fatalf("%s after the heal: %v", cut.name, err)
	}

	// Cut a follower off: it has no leader to forward to, and refuses
	// within the propose timeout; the leader's side goes on.
	leader, err = agreed(all, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range all {
		if nd.name != leader {
			cut = nd
			break
		}
	}
	l.ip(cut.ns, "link", "set", "eth0", "down")
	start = time.Now()
	err = cut.declare("refused-on-a-cut-follower")
	refusedIn = time.Since(start)
	if !errors.As(err, &ae) || ae.Code != rmq.InternalError {
		t.Fatalf("a declare on follower %s, cut off, = %v; want a 541 INTERNAL_ERROR", cut.name, err)
	}
	t.Logf("follower %s, cut off, refused a declare in %s: %s", cut.name, refusedIn.Round(time.Millisecond), ae.Reason)
	if refusedIn > 5*time.Second {
		t.Errorf("the refusal took %s; the issue asks for at most 5 s (the propose timeout is 4 s)", refusedIn)
	}
	for _, nd := range all {
		if nd != cut {
			if err := nd.declare("accepted-without-" + cut.name); err != nil {
				t.Fatalf("declare on %s with %s cut off: %v", nd.name, cut.name, err)
			}
			break
		}
	}
	l.ip(cut.ns, "link", "set", "eth0", "up")
	healed = time.Now()
	within(t, 30*time.Second, "identical definitions after the second heal", func() error {
		if err := cut.hasQueue("accepted-without-" + cut.name); err != nil {
			return err
		}
		return sameDefinitions(all)
	})
	t.Logf("healed in %s", time.Since(healed).Round(time.Millisecond))
	if defs, err = cut.definitions(); err != nil || strings.Contains(defs, "refused-on-a-cut-follower") {
		t.Fatalf("the change refused on the cut follower is in the definitions (%v)", err)
	}
	within(t, 30*time.Second, "one cluster again", func() error { _, err := agreed(all, 3); return err })
	t.Logf("LAN test took %s", time.Since(began).Round(time.Millisecond))
}
