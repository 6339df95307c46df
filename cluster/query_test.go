package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warrenmq/warren/cluster"
	"github.com/warrenmq/warren/cluster/clustertest"
)

// TestQueryReachesEveryRunningNode installs a query handler on three
// nodes: a query to another node gets that node's answer, one to the
// node itself is answered in-process, a handler's error comes back as
// an error, and a stopped node fails at once with ErrNodeDown. The
// status and the cluster name are the same on every node.
func TestQueryReachesEveryRunningNode(t *testing.T) {
	c := clustertest.Start(t, 3)
	for _, n := range c.Nodes {
		name := n.Name
		n.Cluster.SetQueryHandler(func(_ context.Context, req []byte) ([]byte, error) {
			if string(req) == "fail" {
				return nil, errors.New("refused by " + name)
			}
			return []byte(name + ":" + string(req)), nil
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a := c.Nodes[0].Cluster
	for _, n := range c.Nodes {
		got, err := a.Query(ctx, n.Name, []byte("hello"))
		if err != nil || string(got) != n.Name+":hello" {
			t.Fatalf("query %s = %q, %v", n.Name, got, err)
		}
	}
	if _, err := a.Query(ctx, "node-1", []byte("fail")); err == nil || err.Error() != "query node-1: refused by node-1" {
		t.Fatalf("failing handler: %v", err)
	}
	c.Nodes[1].Cluster.SetQueryHandler(func(context.Context, []byte) ([]byte, error) { return nil, nil })
	if got, err := a.Query(ctx, "node-1", []byte("x")); err != nil || len(got) != 0 {
		t.Fatalf("empty answer = %q, %v", got, err)
	}

	want := a.ClusterName()
	if want != "node-0" {
		t.Fatalf("cluster name = %q, want the founder node-0", want)
	}
	leaders := 0
	for _, n := range c.Nodes {
		if got := n.Cluster.ClusterName(); got != want {
			t.Fatalf("%s names the cluster %q, node-0 %q", n.Name, got, want)
		}
		st, err := n.Cluster.Status()
		if err != nil || st.Leader == "" {
			t.Fatalf("%s status = %+v, %v", n.Name, st, err)
		}
		if st.State == "leader" {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes say they lead", leaders)
	}

	c.Nodes[2].Stop()
	c.Eventually(10*time.Second, "node-2 seen down", func() error {
		start := time.Now()
		_, err := a.Query(ctx, "node-2", []byte("x"))
		if !errors.Is(err, cluster.ErrNodeDown) {
			return errors.New("query of a stopped node: " + errString(err))
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("query of a down node took %s", d)
		}
		return nil
	})
	if _, err := a.Query(ctx, "no-such-node", nil); !errors.Is(err, cluster.ErrNodeDown) {
		t.Fatalf("query of an unknown node: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
