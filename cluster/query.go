package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/raft"
)

// Peer queries: one node asks another for what only that node knows (the
// management API asks for its connections, channels, consumers and
// figures, or to close one of its connections). The cluster carries the
// request and the answer as opaque bytes over the inter-node port; what
// they mean is the business of the handler that SetQueryHandler installs
// (cmd/warren installs the management API's), so this package stays
// ignorant of the broker.

// QueryHandler answers a query from another node of the cluster.
type QueryHandler func(ctx context.Context, req []byte) ([]byte, error)

// ErrNodeDown is returned by Query for a member that the gossip sees
// down (or does not know): nothing was sent.
var ErrNodeDown = errors.New("node is down or not a member")

// SetQueryHandler sets what answers the queries of the other nodes; until
// it is set (or after it is set to nil) they fail.
func (n *Node) SetQueryHandler(h QueryHandler) {
	if h == nil {
		n.query.Store(nil)
		return
	}
	n.query.Store(&h)
}

// Query sends req to the member named node and returns its answer. The
// node itself answers in-process; a member that the gossip sees down
// fails at once with ErrNodeDown; ctx bounds the rest (a node that is up
// for the gossip but cannot be reached fails when ctx ends).
func (n *Node) Query(ctx context.Context, node string, req []byte) ([]byte, error) {
	if !n.running() {
		return nil, errNotRunning
	}
	if node == n.cfg.NodeName {
		return n.answerQuery(ctx, req)
	}
	addr, ok := n.memberAddr(node)
	if !ok {
		return nil, fmt.Errorf("query %s: %w", node, ErrNodeDown)
	}
	rep, err := call(ctx, addr, rpcQuery, req)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", node, err)
	}
	if rep.status != statusOK {
		if rep.err == nil {
			rep.err = fmt.Errorf("status %d", rep.status)
		}
		return nil, fmt.Errorf("query %s: %w", node, rep.err)
	}
	return rep.data, nil
}

// answerQuery runs this node's query handler.
func (n *Node) answerQuery(ctx context.Context, req []byte) ([]byte, error) {
	h := n.query.Load()
	if h == nil {
		return nil, fmt.Errorf("node %s does not answer queries", n.cfg.NodeName)
	}
	data, err := (*h)(ctx, req)
	if err == nil && data == nil {
		data = []byte{}
	}
	return data, err
}

// Status is this node's own view of its place in the cluster.
type Status struct {
	// State is the node's raft state: "leader", "follower", "candidate"
	// or "shutdown".
	State string
	// Leader is the leader this node follows, "" when it knows none.
	Leader string
	// AppliedIndex is the last raft index this node has applied.
	AppliedIndex uint64
}

// Status returns this node's view of the cluster.
func (n *Node) Status() (Status, error) {
	if !n.running() {
		return Status{}, errNotRunning
	}
	_, leader := n.raft.LeaderWithID()
	return Status{
		State:        strings.ToLower(n.raft.State().String()),
		Leader:       string(leader),
		AppliedIndex: n.fsm.appliedIndex(),
	}, nil
}

// ClusterName returns the cluster's name: that of its first member in
// the raft configuration, the node that founded it while it is a member
// (as a RabbitMQ cluster is named after its first node). Every node that
// has the same configuration gives the same name; a node not yet added
// gives its own.
func (n *Node) ClusterName() string {
	if !n.running() {
		return n.cfg.NodeName
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return n.cfg.NodeName
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter || s.Suffrage == raft.Nonvoter {
			return string(s.ID)
		}
	}
	return n.cfg.NodeName
}
