// Package clustertest starts Warren clusters in one test process: N
// nodes, each a broker.Server with a cluster.Node as its metadata log, on
// loopback ports (memberlist and raft on real sockets) with temporary
// data dirs and the loopback timing of cluster.LoopbackConfig.
//
// Node 0 is the founder: it starts without seeds and bootstraps the
// cluster; every other node has all the others as seeds. Nodes can be
// started in any order, stopped and restarted on their data dirs and
// ports.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/cluster"
	"github.com/warrenmq/warren/store"
)

// Cluster is a set of test nodes.
type Cluster struct {
	tb    testing.TB
	Nodes []*Node
}

// Node is one test node. Its fields are valid while it runs.
type Node struct {
	// Name is the node's cluster name (node-0, node-1, …).
	Name string
	// URL is the AMQP URL with guest credentials; Addr its host:port.
	URL  string
	Addr string
	// Server is the broker and Cluster its cluster node.
	Server  *broker.Server
	Cluster *cluster.Node
	// DataDir holds the broker's store; the cluster's data is under
	// DataDir/cluster, as cmd/warren lays it out.
	DataDir string

	tb     testing.TB
	ccfg   cluster.Config
	bcfg   broker.Config
	served chan error
}

// Option changes the configuration of node i before it first starts.
type Option func(i int, c *cluster.Config, b *broker.Config)

// WithConfig applies fn to every node's configurations.
func WithConfig(fn func(i int, c *cluster.Config, b *broker.Config)) Option { return Option(fn) }

// New prepares n nodes (ports, data dirs, configurations) without
// starting any; everything stops when the test ends.
func New(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb}
	var logger *slog.Logger
	if os.Getenv("WARREN_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	used := map[int]bool{}
	unique := func(find func(testing.TB) int) int {
		for {
			if p := find(tb); !used[p] {
				used[p] = true
				return p
			}
		}
	}
	gossip := make([]int, n)
	for i := range n {
		gossip[i] = unique(freeGossipPort)
	}
	for i := range n {
		dir := tb.TempDir()
		cc := cluster.LoopbackConfig()
		cc.NodeName = "node-" + strconv.Itoa(i)
		cc.BindPort = gossip[i]
		cc.InterNodePort = unique(freeTCPPort)
		cc.DataDir = filepath.Join(dir, "cluster")
		cc.Logger = logger
		if i > 0 {
			for j := range n {
				if j != i {
					cc.Join = append(cc.Join, net.JoinHostPort("127.0.0.1", strconv.Itoa(gossip[j])))
				}
			}
		}
		bc := broker.DefaultConfig()
		bc.AMQPListen = "127.0.0.1:0"
		bc.DataDir = dir
		bc.Logger = logger
		for _, o := range opts {
			o(i, &cc, &bc)
		}
		c.Nodes = append(c.Nodes, &Node{Name: cc.NodeName, DataDir: dir, tb: tb, ccfg: cc, bcfg: bc})
	}
	tb.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Stop()
		}
	})
	return c
}

// Start prepares n nodes, starts them in order (node 0 first) and waits
// until every one is a voter of the cluster.
func Start(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	c := New(tb, n, opts...)
	for _, nd := range c.Nodes {
		nd.Start()
	}
	c.WaitFormed(10 * time.Second)
	return c
}

// Start starts the node (again, on its data dir and ports).
func (n *Node) Start() {
	n.tb.Helper()
	if n.Server != nil {
		n.tb.Fatalf("%s is running", n.Name)
	}
	cn, err := cluster.New(n.ccfg)
	if err != nil {
		n.tb.Fatalf("%s: %v", n.Name, err)
	}
	bc := n.bcfg
	bc.MetaLog = func(st meta.Store, a meta.Applier) (meta.Log, error) { return cn.OpenLog(st, a) }
	bc.Remote = cn
	sopts := store.DefaultOptions()
	sopts.Logger = bc.Logger
	st, err := store.Open(bc.DataDir, sopts)
	if err != nil {
		n.tb.Fatalf("%s: open store: %v", n.Name, err)
	}
	srv, err := broker.New(bc, st)
	if err != nil {
		st.Close()
		cn.Close()
		n.tb.Fatalf("%s: start broker: %v", n.Name, err)
	}
	ln, err := net.Listen("tcp", bc.AMQPListen)
	if err != nil {
		srv.Close(context.Background())
		n.tb.Fatalf("%s: listen: %v", n.Name, err)
	}
	n.Server, n.Cluster = srv, cn
	n.Addr = ln.Addr().String()
	n.bcfg.AMQPListen = n.Addr // a restart keeps the port
	n.URL = fmt.Sprintf("amqp://guest:guest@%s/", n.Addr)
	n.served = make(chan error, 1)
	go func() { n.served <- srv.Serve(ln) }()
}

// Running reports whether the node runs.
func (n *Node) Running() bool { return n.Server != nil }

// Stop stops the node: the broker closes its connections, then its
// cluster node (which leaves the gossip and stops raft), then its store.
// It is idempotent.
func (n *Node) Stop() {
	if n.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Server.Close(ctx); err != nil {
		n.tb.Errorf("%s: close: %v", n.Name, err)
	}
	if err := <-n.served; err != nil {
		n.tb.Errorf("%s: serve: %v", n.Name, err)
	}
	n.Server, n.Cluster = nil, nil
}

// Restart stops the node and starts it again on its data dir and ports.
func (n *Node) Restart() {
	n.tb.Helper()
	n.Stop()
	n.Start()
}

// Running returns the nodes that run.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// WaitFormed waits until every running node sees every running node as
// a voter and agrees on one leader.
func (c *Cluster) WaitFormed(timeout time.Duration) {
	c.tb.Helper()
	c.Eventually(timeout, "cluster formed", func() error {
		running := c.Running()
		leader := ""
		for _, n := range running {
			ms, err := n.Cluster.Members()
			if err != nil {
				return err
			}
			voters := map[string]bool{}
			for _, m := range ms {
				if m.Voter {
					voters[m.Name] = true
				}
			}
			for _, o := range running {
				if !voters[o.Name] {
					return fmt.Errorf("%s does not have %s as a voter: %+v", n.Name, o.Name, ms)
				}
			}
			l := n.Cluster.Leader()
			if l == "" || (leader != "" && l != leader) {
				return fmt.Errorf("%s sees leader %q, others %q", n.Name, l, leader)
			}
			leader = l
		}
		return nil
	})
}

// Leader returns the running node that leads, waiting up to timeout for
// the running nodes to agree on one.
func (c *Cluster) Leader(timeout time.Duration) *Node {
	c.tb.Helper()
	var leader *Node
	c.Eventually(timeout, "a leader", func() error {
		leader = nil
		name := ""
		for _, n := range c.Running() {
			l := n.Cluster.Leader()
			if l == "" || (name != "" && l != name) {
				return fmt.Errorf("%s sees leader %q, others %q", n.Name, l, name)
			}
			name = l
		}
		for _, n := range c.Running() {
			if n.Name == name {
				leader = n
			}
		}
		if leader == nil {
			return fmt.Errorf("leader %q is not running", name)
		}
		return nil
	})
	return leader
}

// Followers returns the running nodes other than leader.
func (c *Cluster) Followers(leader *Node) []*Node {
	var out []*Node
	for _, n := range c.Running() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// Eventually retries check every 20 ms until it returns nil, failing the
// test with its last error after timeout.
func (c *Cluster) Eventually(timeout time.Duration, what string, check func() error) {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ports are drawn from below the kernel's ephemeral range (32768 and up
// on Linux): a port found free there is not taken meanwhile by an
// outgoing connection or by a listener on port 0 of another test, as one
// from the ephemeral range can be between this check and the node's
// start.
const (
	portLow  = 20000
	portHigh = 32000
)

// freeGossipPort returns a port free for both TCP and UDP on 127.0.0.1,
// as memberlist needs.
func freeGossipPort(tb testing.TB) int {
	tb.Helper()
	for range 200 {
		port := portLow + rand.IntN(portHigh-portLow)
		if free(port, true) {
			return port
		}
	}
	tb.Fatal("no port free for both TCP and UDP")
	return 0
}

// freeTCPPort returns a free TCP port on 127.0.0.1.
func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	for range 200 {
		port := portLow + rand.IntN(portHigh-portLow)
		if free(port, false) {
			return port
		}
	}
	tb.Fatal("no free TCP port")
	return 0
}

// free reports whether port is free on 127.0.0.1 for TCP (and UDP).
func free(port int, udp bool) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tl, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer tl.Close()
	if !udp {
		return true
	}
	ul, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	ul.Close()
	return true
}
