package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// TestClusterManagementAcrossProcesses runs three warren processes in a
// cluster on loopback and drives node a's management API: it lists the
// three nodes with their own figures, the connection of node c (and
// closes it), sees c stopped, and forgets it.
func TestClusterManagementAcrossProcesses(t *testing.T) {
	g := []string{freeClusterPort(t), freeClusterPort(t), freeClusterPort(t)}
	a := startWithManagement(t, t.TempDir(), "--node-name", "warren@a", "--cluster-listen", g[0])
	startProcess(t, t.TempDir(), "--node-name", "warren@b", "--cluster-listen", g[1], "--cluster-join", g[0]) // no HTTP listener
	c := startWithManagement(t, t.TempDir(), "--node-name", "warren@c", "--cluster-listen", g[2], "--cluster-join", g[0]+","+g[1])
	api := newMgmtClient(t, a)

	type node struct {
		Name    string         `json:"name"`
		Running bool           `json:"running"`
		Uptime  *int64         `json:"uptime"`
		Raft    map[string]any `json:"raft"`
	}
	var nodes []node
	waitFor(t, 30*time.Second, "three running voters seen from a", func() bool {
		api.getJSON("/api/nodes", &nodes)
		if len(nodes) != 3 {
			return false
		}
		for _, n := range nodes {
			if !n.Running || n.Uptime == nil || n.Raft["suffrage"] != "voter" || n.Raft["state"] == nil {
				return false
			}
		}
		return true
	})
	var overview struct {
		ClusterName string `json:"cluster_name"`
		Listeners   []struct {
			Node     string `json:"node"`
			Protocol string `json:"protocol"`
		} `json:"listeners"`
	}
	// A node that has just joined answers peer queries a moment after the
	// raft configuration lists it.
	amqpOf := map[string]bool{}
	waitFor(t, 10*time.Second, "every node's AMQP listener in a's overview", func() bool {
		api.getJSON("/api/overview", &overview)
		clear(amqpOf)
		for _, l := range overview.Listeners {
			if l.Protocol == "amqp" {
				amqpOf[l.Node] = true
			}
		}
		return len(amqpOf) == 3
	})
	if overview.ClusterName != "warren@a" || len(amqpOf) != 3 {
		t.Fatalf("overview: cluster %q, AMQP listeners of %v", overview.ClusterName, amqpOf)
	}

	conn, err := rmq.DialConfig(c.URL(), rmq.Config{Properties: rmq.Table{"connection_name": "on-c"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type connection struct {
		Name  string `json:"name"`
		Node  string `json:"node"`
		Props struct {
			Name string `json:"connection_name"`
		} `json:"client_properties"`
	}
	var onC connection
	waitFor(t, 10*time.Second, "c's connection listed by a", func() bool {
		var conns []connection
		api.getJSON("/api/connections", &conns)
		for _, x := range conns {
			if x.Props.Name == "on-c" {
				onC = x
				return true
			}
		}
		return false
	})
	if onC.Node != "warren@c" {
		t.Fatalf("connection on c listed with node %q", onC.Node)
	}
	// A queue declared on c lives on c: a's API lists it with c as node.
	cch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cch.QueueDeclare("homed-on-c", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var queues []struct {
		Name string `json:"name"`
		Node string `json:"node"`
	}
	waitFor(t, 10*time.Second, "the queue declared on c listed by a", func() bool {
		api.getJSON("/api/queues", &queues)
		for _, q := range queues {
			if q.Name == "homed-on-c" {
				return true
			}
		}
		return false
	})
	for _, q := range queues {
		if q.Name == "homed-on-c" && q.Node != "warren@c" {
			t.Fatalf("queue declared on c listed by a with node %q", q.Node)
		}
	}
	closed := conn.NotifyClose(make(chan *rmq.Error, 1))
	api.mustDo(http.MethodDelete, "/api/connections/"+url.PathEscape(onC.Name), nil, http.StatusNoContent)
	select {
	case err := <-closed:
		if err == nil || err.Code != rmq.ConnectionForced {
			t.Fatalf("close from a = %v, want 320 CONNECTION_FORCED", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection on c was not closed from a")
	}

	if err := c.stop(); err != nil {
		t.Fatalf("stop c: %v", err)
	}
	waitFor(t, 20*time.Second, "c seen stopped", func() bool {
		var n node
		api.getJSON("/api/nodes/warren@c", &n)
		return !n.Running
	})
	api.mustDo(http.MethodDelete, "/api/nodes/warren@c", nil, http.StatusNoContent)
	waitFor(t, 10*time.Second, "c forgotten", func() bool {
		api.getJSON("/api/nodes", &nodes)
		return len(nodes) == 2
	})
}

// waitFor polls cond every 100 ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
