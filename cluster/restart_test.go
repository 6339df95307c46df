package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warrenmq/warren/cluster/clustertest"
)

// TestWholeClusterRestart stops every node of a young cluster (its
// membership changes are all in the committed log, no snapshot yet) and
// starts them again: they form the same cluster, elect a leader, keep
// their metadata and accept changes. (hashicorp/raft's committed-log
// restore alone brought them back with no configuration and no leader;
// restart.go.)
func TestWholeClusterRestart(t *testing.T) {
	c := clustertest.Start(t, 3)
	ch := channel(t, c.Leader(5*time.Second))
	for i := range 5 {
		if _, err := ch.QueueDeclare(fmt.Sprint("q", i), true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	sameMetadata(t, c)
	for round := range 2 {
		for _, n := range c.Nodes {
			n.Stop()
		}
		for _, n := range c.Nodes {
			n.Start()
		}
		c.WaitFormed(15 * time.Second)
		ch := channel(t, c.Leader(5*time.Second))
		for i := range 5 {
			if _, err := ch.QueueDeclarePassive(fmt.Sprint("q", i), true, false, false, false, nil); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if _, err := ch.QueueDeclare(fmt.Sprint("after-restart-", round), true, false, false, false, nil); err != nil {
			t.Fatalf("round %d: declare after the restart: %v", round, err)
		}
		sameMetadata(t, c)
	}
}

// TestFollowerRestartKeepsMembers restarts one follower: it sees the
// same members and leader as the others, at once.
func TestFollowerRestartKeepsMembers(t *testing.T) {
	c := clustertest.Start(t, 3)
	leader := c.Leader(5 * time.Second)
	ch := channel(t, leader)
	for i := range 3 {
		if _, err := ch.QueueDeclare(fmt.Sprint("q", i), true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	sameMetadata(t, c)
	f := c.Followers(leader)[0]
	f.Restart()
	ms, err := f.Cluster.Members()
	must(t, err)
	voters := 0
	for _, m := range ms {
		if m.Voter {
			voters++
		}
	}
	if voters != 3 {
		t.Fatalf("%s restarted sees %+v", f.Name, ms)
	}
	c.WaitFormed(10 * time.Second)
}
