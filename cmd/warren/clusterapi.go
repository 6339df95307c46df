package main

import (
	"context"

	"github.com/warrenmq/warren/cluster"
	"github.com/warrenmq/warren/mgmtui"
)

// mgmtCluster gives the management API the cluster node it runs on
// (mgmtui does not import cluster).
type mgmtCluster struct{ n *cluster.Node }

var _ mgmtui.Cluster = mgmtCluster{}

// ClusterName implements mgmtui.Cluster.
func (c mgmtCluster) ClusterName() string { return c.n.ClusterName() }

// Members implements mgmtui.Cluster.
func (c mgmtCluster) Members() ([]mgmtui.Member, error) {
	ms, err := c.n.Members()
	if err != nil {
		return nil, err
	}
	out := make([]mgmtui.Member, len(ms))
	for i, m := range ms {
		out[i] = mgmtui.Member{Name: m.Name, Running: m.Running, Voter: m.Voter, Leader: m.Leader, Joining: m.Joining}
	}
	return out, nil
}

// Status implements mgmtui.Cluster.
func (c mgmtCluster) Status() (mgmtui.NodeStatus, error) {
	st, err := c.n.Status()
	return mgmtui.NodeStatus{State: st.State, Leader: st.Leader, AppliedIndex: st.AppliedIndex}, err
}

// Forget implements mgmtui.Cluster.
func (c mgmtCluster) Forget(ctx context.Context, node string) error { return c.n.Forget(ctx, node) }

// Query implements mgmtui.Cluster.
func (c mgmtCluster) Query(ctx context.Context, node string, req []byte) ([]byte, error) {
	return c.n.Query(ctx, node, req)
}
