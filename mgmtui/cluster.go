package mgmtui

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// The management API of a cluster node shows the whole cluster, as
// RabbitMQ's does: metadata (vhosts, users, exchanges, queues, bindings,
// policies) is the same on every node, and what only a node knows (its
// connections, channels and consumers, its memory and uptime) is asked
// of that node's management API over the cluster's inter-node port. A
// node that is down or does not answer within Options.PeerTimeout is
// left out of the listing; /metrics stays per node.

// Cluster is what the management API needs of the cluster its node
// belongs to; cmd/warren adapts a cluster.Node to it. A nil Cluster in
// Options is a standalone node.
type Cluster interface {
	// ClusterName is the cluster's name, the same on every node.
	ClusterName() string
	// Members lists the cluster's members, this node among them.
	Members() ([]Member, error)
	// Status is this node's own view of the cluster.
	Status() (NodeStatus, error)
	// Forget removes a stopped member from the cluster.
	Forget(ctx context.Context, node string) error
	// Query sends req to the management API of the member named node
	// (its API.AnswerPeer) and returns the answer.
	Query(ctx context.Context, node string, req []byte) ([]byte, error)
}

// Member is one node of the cluster as this node sees it.
type Member struct {
	Name string
	// Running says the node is up (the gossip sees it).
	Running bool
	// Voter says it votes on metadata changes; Leader that it leads.
	Voter, Leader bool
	// Joining says it is up but not yet a member of the metadata log.
	Joining bool
}

// NodeStatus is a node's own view of the cluster's metadata log.
type NodeStatus struct {
	// State is "leader", "follower", "candidate" or "shutdown".
	State string
	// Leader is the leader it follows, "" when it knows none.
	Leader string
	// AppliedIndex is how far it has applied the log.
	AppliedIndex uint64
}

// peerRequest is a query of one node's management API by another's.
// User is the name of the user the asking node authenticated; the
// answering node applies that user's view (users and permissions are
// the same on every node).
type peerRequest struct {
	Op     string `json:"op"`
	User   string `json:"user,omitempty"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Peer query operations.
const (
	peerNode        = "node"        // answer: this node's object of /api/nodes
	peerOverview    = "overview"    // answer: peerTotals
	peerConnections = "connections" // answer: the connection objects the user may see
	peerChannels    = "channels"    // answer: the channel objects the user may see
	peerConsumers   = "consumers"   // answer: the consumer objects in the vhosts the user may see
	peerClose       = "close"       // close connection Name with Reason; answer: peerClosed
)

// peerTotals is a node's part of /api/overview.
type peerTotals struct {
	Connections int      `json:"connections"`
	Channels    int      `json:"channels"`
	Consumers   int      `json:"consumers"`
	Listeners   []object `json:"listeners"`
	Contexts    []object `json:"contexts"`
}

// peerClosed answers peerClose.
type peerClosed struct {
	Closed bool `json:"closed"`
}

// AnswerPeer answers a query of another node's management API; its
// signature is cluster.QueryHandler's.
func (a *API) AnswerPeer(_ context.Context, req []byte) ([]byte, error) {
	var pr peerRequest
	if err := json.Unmarshal(req, &pr); err != nil {
		return nil, fmt.Errorf("management peer query: %w", err)
	}
	if pr.Op == peerNode {
		return json.Marshal(a.node())
	}
	bu, ok := a.srv.Users().Get(pr.User)
	if !ok {
		return nil, fmt.Errorf("management peer query: no user %q on node %s", pr.User, a.opts.Node)
	}
	u := &user{bu}
	var v any
	switch pr.Op {
	case peerOverview:
		v = a.localTotals(u)
	case peerConnections:
		v = a.localConnections(u)
	case peerChannels:
		v = a.localChannels(u)
	case peerConsumers:
		v = a.localConsumers(u)
	case peerClose:
		v = peerClosed{Closed: a.closeLocal(u, pr.Name, pr.Reason)}
	default:
		return nil, fmt.Errorf("management peer query: unknown operation %q", pr.Op)
	}
	return json.Marshal(v)
}

// members returns the cluster's members; a standalone node is the only
// member of its own.
func (a *API) members() ([]Member, error) {
	if a.opts.Cluster == nil {
		return []Member{{Name: a.opts.Node, Running: true}}, nil
	}
	return a.opts.Cluster.Members()
}

// peers returns the names of the other members that are up.
func (a *API) peers() []string {
	if a.opts.Cluster == nil {
		return nil
	}
	ms, err := a.opts.Cluster.Members()
	if err != nil {
		a.opts.Logger.Debug("management: no cluster members", "err", err)
		return nil
	}
	var out []string
	for _, m := range ms {
		if m.Running && m.Name != a.opts.Node {
			out = append(out, m.Name)
		}
	}
	return out
}

// clusterName is the cluster's name, the node's own on a standalone node.
func (a *API) clusterName() string {
	if a.opts.Cluster == nil {
		return a.opts.Node
	}
	return a.opts.Cluster.ClusterName()
}

// ask sends req to each of nodes at once and returns their answers,
// decoded into values of T, by node name; a node that fails or does not
// answer within the peer timeout is left out (and logged).
func ask[T any](ctx context.Context, a *API, nodes []string, req peerRequest) map[string]T {
	out := map[string]T{}
	if len(nodes) == 0 {
		return out
	}
	body, err := json.Marshal(req)
	if err != nil {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.PeerTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := a.opts.Cluster.Query(ctx, node, body)
			var v T
			if err == nil {
				err = json.Unmarshal(data, &v)
			}
			if err != nil {
				a.opts.Logger.Debug("management: a node did not answer; left out", "node", node, "op", req.Op, "err", err)
				return
			}
			mu.Lock()
			out[node] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// gather returns this node's objects and those of every other node that
// answers within the peer timeout.
func (a *API) gather(ctx context.Context, u *user, op string, local []object) []object {
	peers := a.peers()
	answers := ask[[]object](ctx, a, peers, peerRequest{Op: op, User: u.Name})
	for _, node := range peers {
		local = append(local, answers[node]...)
	}
	return local
}

// defaultPeerTimeout bounds a peer query.
const defaultPeerTimeout = 2 * time.Second
