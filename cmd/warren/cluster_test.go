package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// freeClusterPort returns a loopback port free for gossip (TCP and UDP)
// with the next one free for inter-node traffic.
func freeClusterPort(t *testing.T) string {
	t.Helper()
	for range 200 {
		// Drawn as freePort draws them, below the ephemeral range.
		port := 10000 + rand.IntN(9999)
		tl, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ul, uerr := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		nl, nerr := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		tl.Close()
		if uerr == nil {
			ul.Close()
		}
		if nerr == nil {
			nl.Close()
		}
		if uerr == nil && nerr == nil {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	t.Fatal("no free cluster port")
	return ""
}

// startCluster starts n warren processes clustered on loopback, each
// with a data dir of its own: warren@n0 founds the cluster and every other
// joins the ones before it. Node mgmt also serves the management API; the
// call returns once that API lists n running voters.
func startCluster(t *testing.T, n, mgmt int) []*process {
	t.Helper()
	var nodes []*process
	var seeds []string
	for i := range n {
		gossip := freeClusterPort(t)
		args := []string{"--node-name", fmt.Sprintf("warren@n%d", i), "--cluster-listen", gossip}
		if len(seeds) > 0 {
			args = append(args, "--cluster-join", strings.Join(seeds, ","))
		}
		start := startProcess
		if i == mgmt {
			start = startWithManagement
		}
		nodes = append(nodes, start(t, t.TempDir(), args...))
		seeds = append(seeds, gossip)
	}
	api := newMgmtClient(t, nodes[mgmt])
	waitFor(t, 30*time.Second, fmt.Sprintf("%d running voters", n), func() bool {
		var members []struct {
			Running bool           `json:"running"`
			Raft    map[string]any `json:"raft"`
		}
		// A joining node has guest only once it has the cluster's metadata.
		status, reply := api.do(http.MethodGet, "/api/nodes", nil)
		if status != http.StatusOK || json.Unmarshal(reply, &members) != nil {
			return false
		}
		voters := 0
		for _, m := range members {
			if m.Running && m.Raft["suffrage"] == "voter" {
				voters++
			}
		}
		return voters == n
	})
	return nodes
}

// TestTwoProcessCluster starts two warren processes with --cluster-listen,
// the second with --cluster-join: a queue declared on one is there on the
// other, and both stop cleanly on SIGTERM.
func TestTwoProcessCluster(t *testing.T) {
	g1, g2 := freeClusterPort(t), freeClusterPort(t)
	a := startProcess(t, t.TempDir(), "--node-name", "warren@a", "--cluster-listen", g1)
	b := startProcess(t, t.TempDir(), "--node-name", "warren@b", "--cluster-listen", g2, "--cluster-join", g1)

	conn, err := rmq.Dial(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("shared", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// b gets guest and the queue once the leader has added it.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := func() error {
			c, err := rmq.Dial(b.URL())
			if err != nil {
				return err
			}
			defer c.Close()
			ch, err := c.Channel()
			if err != nil {
				return err
			}
			_, err = ch.QueueDeclarePassive("shared", true, false, false, false, nil)
			return err
		}()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b never served the queue declared on a: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close()
	for _, p := range []*process{b, a} {
		if err := p.stop(); err != nil {
			t.Fatalf("stop: %v\n%s", err, p.logs.String())
		}
	}
	if !strings.Contains(a.logs.String(), "member added to the cluster") {
		t.Fatalf("a's log does not tell that b joined:\n%s", a.logs.String())
	}
}

// TestClusterJoinNeedsListen refuses --cluster-join without --cluster-listen.
func TestClusterJoinNeedsListen(t *testing.T) {
	out, err := runBinary("--data-dir", t.TempDir(), "--amqp-listen", "127.0.0.1:0", "--mgmt-listen", "", "--cluster-join", "127.0.0.1:7946")
	if err == nil || !strings.Contains(out, "--cluster-join needs --cluster-listen") {
		t.Fatalf("err=%v out=%s", err, out)
	}
}
