package mgmtui_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/mgmtui"
)

// fakeNet is an in-process cluster for the management API: members, who
// is up, and each member's API, which fakeNode.Query calls directly.
// A member can be made silent: it is up but its queries hang.
type fakeNet struct {
	mu        sync.Mutex
	order     []string
	apis      map[string]*mgmtui.API
	down      map[string]bool
	silent    map[string]bool
	forgotten []string
}

// fakeNode is one member's view of a fakeNet (its mgmtui.Cluster).
type fakeNode struct {
	net  *fakeNet
	name string
}

func (n fakeNode) ClusterName() string { return "warren@a" }

func (n fakeNode) Members() ([]mgmtui.Member, error) {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	var out []mgmtui.Member
	for i, name := range n.net.order {
		out = append(out, mgmtui.Member{Name: name, Running: !n.net.down[name], Voter: i < 2, Leader: i == 0})
	}
	return out, nil
}

func (n fakeNode) Status() (mgmtui.NodeStatus, error) {
	return mgmtui.NodeStatus{State: "follower", Leader: "warren@a", AppliedIndex: 7}, nil
}

func (n fakeNode) Forget(_ context.Context, name string) error {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	n.net.forgotten = append(n.net.forgotten, name)
	n.net.order = slices.DeleteFunc(n.net.order, func(s string) bool { return s == name })
	return nil
}

func (n fakeNode) Query(ctx context.Context, node string, req []byte) ([]byte, error) {
	n.net.mu.Lock()
	api, down, silent := n.net.apis[node], n.net.down[node], n.net.silent[node]
	n.net.mu.Unlock()
	switch {
	case api == nil || down:
		return nil, errors.New(node + " is down")
	case silent:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return api.AnswerPeer(ctx, req)
}

func (n *fakeNet) set(m map[string]bool, name string, v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m[name] = v
}

// startFakeCluster starts a broker and management API per name, joined
// in a fakeNet.
func startFakeCluster(t *testing.T, names ...string) (*fakeNet, map[string]*fixture) {
	t.Helper()
	fn := &fakeNet{order: names, apis: map[string]*mgmtui.API{}, down: map[string]bool{}, silent: map[string]bool{}}
	fixtures := map[string]*fixture{}
	for _, name := range names {
		b := brokertest.Start(t)
		api := mgmtui.New(b.Server, mgmtui.Options{
			Node: name, AMQPAddr: b.Addr, HTTPAddr: "127.0.0.1:1" + fmt.Sprint(len(fixtures)),
			SampleInterval: 20 * time.Millisecond, Cluster: fakeNode{fn, name}, PeerTimeout: 300 * time.Millisecond, UI: mgmtui.UIHandler(),
		})
		srv := httptest.NewServer(api)
		t.Cleanup(func() {
			srv.Close()
			api.Close()
		})
		fn.apis[name] = api
		fixtures[name] = &fixture{t: t, b: b, api: api, http: srv}
	}
	return fn, fixtures
}

// TestClusterWideManagement: node a's API lists the nodes of the
// cluster with each one's own figures, the connections, channels and
// consumers of every node with their node, sums every node's in the
// overview, closes a connection of node b, leaves out a node that does
// not answer (within the peer timeout) and forgets a stopped one.
func TestClusterWideManagement(t *testing.T) {
	fn, fx := startFakeCluster(t, "warren@a", "warren@b", "warren@c")
	a, b := fx["warren@a"], fx["warren@b"]

	conn := b.dial("guest", "guest", "on-b")
	ch := b.channel(conn)
	if _, err := ch.QueueDeclare("work", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("work", "ctag-b", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	a.dial("guest", "guest", "on-a")

	nodes := a.expect(http.StatusOK, get, "/api/nodes", nil).list(t)
	if len(nodes) != 3 {
		t.Fatalf("nodes = %v", nodes)
	}
	for i, n := range nodes {
		name := []string{"warren@a", "warren@b", "warren@c"}[i]
		raft, _ := n["raft"].(map[string]any)
		if n["name"] != name || n["running"] != true || n["type"] != "disc" || raft == nil {
			t.Fatalf("node %d = %v", i, n)
		}
		if _, ok := n["uptime"].(float64); !ok {
			t.Fatalf("%s has no uptime: %v", name, n)
		}
		if raft["state"] != "follower" || raft["applied_index"] != 7.0 || raft["leader"] != (i == 0) || raft["suffrage"] != map[bool]string{true: "voter", false: "nonvoter"}[i < 2] {
			t.Fatalf("%s raft = %v", name, raft)
		}
	}
	if nodes[1]["sockets_used"] != 1.0 || nodes[0]["sockets_used"] != 1.0 || nodes[2]["sockets_used"] != 0.0 {
		t.Fatalf("each node's sockets_used should be its own: %v %v %v", nodes[0]["sockets_used"], nodes[1]["sockets_used"], nodes[2]["sockets_used"])
	}
	if n := a.expect(http.StatusOK, get, "/api/nodes/warren@b", nil).object(t); n["name"] != "warren@b" || n["sockets_used"] != 1.0 {
		t.Fatalf("node b = %v", n)
	}

	var conns []map[string]any
	eventually(t, "both connections listed", func() bool {
		conns = a.expect(http.StatusOK, get, "/api/connections", nil).list(t)
		return len(conns) == 2
	})
	byNode := map[string]map[string]any{}
	for _, c := range conns {
		byNode[c["node"].(string)] = c
	}
	onB := byNode["warren@b"]
	if onB == nil || onB["client_properties"].(map[string]any)["connection_name"] != "on-b" || byNode["warren@a"] == nil {
		t.Fatalf("connections = %v", conns)
	}
	name := onB["name"].(string)
	if c := a.expect(http.StatusOK, get, "/api/connections/"+url.PathEscape(name), nil).object(t); c["node"] != "warren@b" {
		t.Fatalf("connection on b through a = %v", c)
	}
	chans := a.expect(http.StatusOK, get, "/api/connections/"+url.PathEscape(name)+"/channels", nil).list(t)
	if len(chans) != 1 || chans[0]["node"] != "warren@b" || chans[0]["consumer_count"] != 1.0 {
		t.Fatalf("channels of b's connection = %v", chans)
	}
	if all := a.expect(http.StatusOK, get, "/api/channels", nil).list(t); len(all) != 1 {
		t.Fatalf("channels = %v", all)
	}
	cons := a.expect(http.StatusOK, get, "/api/consumers/%2F", nil).list(t)
	if len(cons) != 1 || cons[0]["consumer_tag"] != "ctag-b" || cons[0]["channel_details"].(map[string]any)["node"] != "warren@b" {
		t.Fatalf("consumers = %v", cons)
	}
	o := a.expect(http.StatusOK, get, "/api/overview", nil).object(t)
	if o["cluster_name"] != "warren@a" || o["node"] != "warren@a" || num(t, o, "object_totals.connections") != 2 ||
		num(t, o, "object_totals.channels") != 1 || num(t, o, "object_totals.consumers") != 1 {
		t.Fatalf("overview = %v", o)
	}
	listenerNodes := map[any]int{}
	for _, l := range o["listeners"].([]any) {
		listenerNodes[l.(map[string]any)["node"]]++
	}
	if len(listenerNodes) != 3 || listenerNodes["warren@c"] != 2 {
		t.Fatalf("listeners by node = %v", listenerNodes)
	}
	if q := a.expect(http.StatusOK, get, "/api/exchanges/%2F/amq.direct", nil).object(t); q["node"] != "warren@a" {
		t.Fatalf("exchange node = %v", q["node"])
	}

	closed := conn.NotifyClose(make(chan *rmq.Error, 1))
	a.expect(http.StatusNoContent, del, "/api/connections/"+url.PathEscape(name), nil)
	select {
	case err := <-closed:
		if err == nil || err.Code != rmq.ConnectionForced {
			t.Fatalf("close = %v, want 320 CONNECTION_FORCED", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection on b was not closed")
	}

	// c up but silent: left out, within the peer timeout.
	fn.set(fn.silent, "warren@c", true)
	start := time.Now()
	nodes = a.expect(http.StatusOK, get, "/api/nodes", nil).list(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("/api/nodes with a silent node took %s", d)
	}
	if nodes[2]["running"] != true || nodes[2]["uptime"] != nil {
		t.Fatalf("silent node = %v", nodes[2])
	}
	a.expect(http.StatusOK, get, "/api/connections", nil)

	// c stopped: shown as not running; forgotten by an administrator.
	fn.set(fn.down, "warren@c", true)
	if n := a.expect(http.StatusOK, get, "/api/nodes/warren@c", nil).object(t); n["running"] != false || n["raft"].(map[string]any)["suffrage"] != "nonvoter" {
		t.Fatalf("stopped node = %v", n)
	}
	a.addUser("watcher", []string{"monitoring"}, nil)
	if r := a.request(del, "/api/nodes/warren@c", "watcher", "pw", nil); r.status != http.StatusForbidden {
		t.Fatalf("forget by a monitoring user = %d %s", r.status, r.raw)
	}
	a.expect(http.StatusBadRequest, del, "/api/nodes/warren@b", nil) // running
	a.expect(http.StatusBadRequest, del, "/api/nodes/warren@a", nil) // itself
	a.expect(http.StatusNotFound, del, "/api/nodes/warren@nowhere", nil)
	a.expect(http.StatusNoContent, del, "/api/nodes/warren@c", nil)
	fn.mu.Lock()
	forgotten := slices.Clone(fn.forgotten)
	fn.mu.Unlock()
	if len(forgotten) != 1 || forgotten[0] != "warren@c" {
		t.Fatalf("forgotten = %v", forgotten)
	}
	if nodes := a.expect(http.StatusOK, get, "/api/nodes", nil).list(t); len(nodes) != 2 {
		t.Fatalf("nodes after forget = %v", nodes)
	}
}

// TestStandaloneNodeIsItsOwnCluster: without a Cluster the API lists
// one node without raft fields, named as the cluster, which cannot be
// forgotten.
func TestStandaloneNodeIsItsOwnCluster(t *testing.T) {
	f := newFixture(t)
	nodes := f.expect(http.StatusOK, get, "/api/nodes", nil).list(t)
	if len(nodes) != 1 || nodes[0]["raft"] != nil || nodes[0]["name"] != "warren@test" {
		t.Fatalf("nodes = %v", nodes)
	}
	if o := f.expect(http.StatusOK, get, "/api/cluster-name", nil).object(t); o["name"] != "warren@test" {
		t.Fatalf("cluster name = %v", o)
	}
	f.expect(http.StatusBadRequest, del, "/api/nodes/warren@test", nil)
	f.expect(http.StatusNotFound, del, "/api/nodes/other", nil)
}
