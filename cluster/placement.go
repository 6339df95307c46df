package cluster

import (
	"github.com/hashicorp/memberlist"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/meta"
)

// The Node is the broker's broker.Remote: it names this node, places
// queues with the balanced locator, and gives the broker handles on the
// queues whose home is another node (remotequeue.go), which it reaches
// over queue links (link.go).

// NodeName implements broker.Remote.
func (n *Node) NodeName() string { return n.cfg.NodeName }

// Serve implements broker.Remote: the queues of s whose home is this
// node are served to the other nodes. Until then their requests fail as
// if the queue were not here.
func (n *Node) Serve(s *broker.Server) { n.links.srv.Store(s) }

// QueueHandle implements broker.Remote.
func (n *Node) QueueHandle(q meta.Queue) broker.RemoteQueue { return newRemoteQueue(n.links, q) }

// BalancedNode implements broker.Remote: of the running members, the one
// that is the home of the fewest queues (ties go to the first name).
// "" when the gossip does not run.
func (n *Node) BalancedNode() string {
	if !n.running() {
		return ""
	}
	counts := map[string]int{}
	for _, m := range n.ml.Members() {
		if m.State == memberlist.StateAlive {
			counts[m.Name] = 0
		}
	}
	n.fsm.view(func(st *meta.State) {
		st.Each(func(r meta.Record) {
			if q, ok := r.(*meta.Queue); ok {
				if c, up := counts[q.Node]; up {
					counts[q.Node] = c + 1
				}
			}
		})
	})
	best, bestCount := "", 0
	for name, c := range counts {
		if best == "" || c < bestCount || (c == bestCount && name < best) {
			best, bestCount = name, c
		}
	}
	return best
}

// memberAddr returns the inter-node address of a running member.
func (n *Node) memberAddr(name string) (string, bool) {
	if !n.running() {
		return "", false
	}
	for _, m := range n.ml.Members() {
		if m.Name == name && (m.State == memberlist.StateAlive || m.State == memberlist.StateSuspect) {
			return decodeNodeMeta(m.Meta)
		}
	}
	return "", false
}

// BreakLinks closes this node's queue links to node, as a network
// failure would (tests): the deliveries made over them are requeued and
// the consumers served over them cancelled, on both sides. A later
// request dials a new link.
func (n *Node) BreakLinks(node string) {
	n.links.peerDown(node)
}
