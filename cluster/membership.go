package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

// Membership: memberlist says who is up; raft's configuration says who
// is a member. The leader turns the first into the second: a node that
// joins the gossip is added to raft, as a voter while there are fewer
// than MaxVoters, else as a non-voter (promoted when a voter is
// forgotten). A node that leaves or fails stays a member, shown as not
// running, as RabbitMQ keeps stopped nodes, until Forget removes it.

// Member is one node of the cluster as this node sees it.
type Member struct {
	// Name is the node's name (warren@host).
	Name string
	// Addr is its inter-node address (raft and Warren's requests).
	Addr string
	// Running says the gossip sees it up.
	Running bool
	// Voter says it votes in raft; Leader that it leads.
	Voter  bool
	Leader bool
	// Joining says the gossip sees it but raft does not have it yet
	// (the leader adds it within moments).
	Joining bool
}

// Members returns the cluster's members, sorted by name: those of the
// raft configuration (running or not) and those the gossip sees that are
// not in it yet.
func (n *Node) Members() ([]Member, error) {
	if !n.running() {
		return nil, errNotRunning
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read the raft configuration: %w", err)
	}
	alive := map[string]bool{}
	addrs := map[string]string{}
	for _, m := range n.ml.Members() {
		if m.State == memberlist.StateAlive || m.State == memberlist.StateSuspect {
			alive[m.Name] = true
			if a, ok := decodeNodeMeta(m.Meta); ok {
				addrs[m.Name] = a
			}
		}
	}
	_, leader := n.raft.LeaderWithID()
	var out []Member
	seen := map[string]bool{}
	for _, s := range f.Configuration().Servers {
		name := string(s.ID)
		seen[name] = true
		out = append(out, Member{Name: name, Addr: string(s.Address), Running: alive[name], Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	for name := range alive {
		if !seen[name] {
			out = append(out, Member{Name: name, Addr: addrs[name], Running: true, Joining: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Forget removes a stopped node from the cluster (RabbitMQ's
// forget_cluster_node): it no longer counts towards the majority, and if
// it comes back it is added again as a new member. A running node, or
// this one, cannot be forgotten.
func (n *Node) Forget(ctx context.Context, name string) error {
	if !n.running() {
		return errNotRunning
	}
	if name == n.cfg.NodeName {
		return fmt.Errorf("node %s cannot forget itself", name)
	}
	for _, m := range n.ml.Members() {
		if m.Name == name && (m.State == memberlist.StateAlive || m.State == memberlist.StateSuspect) {
			return fmt.Errorf("node %s is running: stop it before forgetting it", name)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	_, _, err := n.onLeader(ctx, rpcForget, []byte(name), func() (reply, error) {
		return reply{}, n.forgetAsLeader(name)
	})
	if err != nil {
		return fmt.Errorf("forget %s: %w", name, err)
	}
	n.gossip.forget(name)
	return nil
}

// forgetAsLeader removes name from the raft configuration.
func (n *Node) forgetAsLeader(name string) error {
	if n.raft.State() != raft.Leader {
		return errNotLeader
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	found := false
	for _, s := range f.Configuration().Servers {
		found = found || string(s.ID) == name
	}
	if !found {
		return fmt.Errorf("no member named %s", name)
	}
	if err := n.raft.RemoveServer(raft.ServerID(name), 0, n.cfg.ProposeTimeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return errNotLeader
		}
		return err
	}
	n.log.Info("member forgotten", "member", name)
	select {
	case n.events <- struct{}{}: // a non-voter may take the voter's place
	default:
	}
	return nil
}

// monitorLeadership runs leaderLoop while this node leads.
func (n *Node) monitorLeadership() {
	defer n.wg.Done()
	var stop, done chan struct{}
	end := func() {
		if stop != nil {
			close(stop)
			<-done
			stop, done = nil, nil
		}
	}
	defer end()
	for {
		select {
		case leading := <-n.raft.LeaderCh():
			if leading && stop == nil {
				stop, done = make(chan struct{}), make(chan struct{})
				go func(stop, done chan struct{}) {
					defer close(done)
					n.leaderLoop(stop)
				}(stop, done)
			} else if !leading {
				end()
			}
		case <-n.stop:
			return
		}
	}
}

// leaderLoop first waits until every entry of earlier terms is applied
// here (a barrier; until then the commit index may trail and read-index
// answers are held back), then keeps the raft configuration in step with
// the gossip.
func (n *Node) leaderLoop(stop chan struct{}) {
	for {
		err := n.raft.Barrier(n.cfg.ProposeTimeout).Error()
		if err == nil {
			break
		}
		n.log.Debug("leader barrier failed", "err", err)
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.ready.Store(true)
	defer n.ready.Store(false)
	n.log.Info("leading the cluster")
	n.reconcile()
	t := time.NewTicker(n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-n.events:
			n.reconcile()
		case <-t.C:
			n.reconcile()
		}
	}
}

// reconcile adds the nodes the gossip sees up to the raft configuration,
// updates moved addresses and promotes non-voters while voters are
// missing. Nodes that are down are left as they are.
func (n *Node) reconcile() {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Debug("reconcile: read the raft configuration", "err", err)
		return
	}
	servers := map[raft.ServerID]raft.Server{}
	voters := 0
	for _, s := range f.Configuration().Servers {
		servers[s.ID] = s
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	for _, m := range n.ml.Members() {
		if m.State != memberlist.StateAlive {
			continue
		}
		addr, ok := decodeNodeMeta(m.Meta)
		if !ok {
			continue
		}
		id := raft.ServerID(m.Name)
		s, in := servers[id]
		var voter bool
		switch {
		case !in:
			voter = voters < n.cfg.MaxVoters
		case string(s.Address) != addr:
			voter = s.Suffrage == raft.Voter
		case s.Suffrage != raft.Voter && voters < n.cfg.MaxVoters:
			voter = true
		default:
			continue
		}
		var err error
		if voter {
			err = n.raft.AddVoter(id, raft.ServerAddress(addr), 0, n.cfg.ProposeTimeout).Error()
		} else {
			err = n.raft.AddNonvoter(id, raft.ServerAddress(addr), 0, n.cfg.ProposeTimeout).Error()
		}
		if err != nil {
			n.log.Warn("could not add a node to the cluster", "member", m.Name, "voter", voter, "err", err)
			return
		}
		if voter && (!in || s.Suffrage != raft.Voter) {
			voters++
		}
		n.log.Info("member added to the cluster", "member", m.Name, "addr", addr, "voter", voter)
	}
}

// rejoinLoop keeps the gossip whole: a node alone, or without a leader,
// tries its seeds, and
// every node tries the members raft has that the gossip lost, at the
// address they last gossiped from (after a partition each side may have
// given the other up).
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		n.rejoin()
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

func (n *Node) rejoin() {
	n.gossip.save(n.store, n.log)
	var targets []string
	if _, leader := n.raft.LeaderWithID(); leader == "" || n.ml.NumMembers() <= 1 {
		// Not in a working cluster yet: the seeds that are up may have
		// found each other but not the one that leads.
		targets = append(targets, n.cfg.Join...)
	}
	f := n.raft.GetConfiguration()
	if f.Error() == nil {
		alive := map[string]bool{}
		for _, m := range n.ml.Members() {
			alive[m.Name] = true
		}
		for _, s := range f.Configuration().Servers {
			if name := string(s.ID); !alive[name] {
				if a := n.gossip.addr(name); a != "" {
					targets = append(targets, a)
				}
			}
		}
	}
	if len(targets) == 0 {
		return
	}
	joined, err := n.ml.Join(targets)
	if joined > 0 {
		n.log.Debug("gossip joined", "targets", targets, "reached", joined)
	} else if err != nil {
		n.log.Debug("gossip join failed, will retry", "targets", targets, "err", err)
	}
}

// nodeMeta is the memberlist delegate: it publishes this node's
// inter-node address, which the leader gives raft.
type nodeMeta []byte

// encodeNodeMeta: a version byte, then the inter-node address.
func encodeNodeMeta(raftAddr string) []byte { return append([]byte{1}, raftAddr...) }

func decodeNodeMeta(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != 1 {
		return "", false
	}
	return string(b[1:]), true
}

// NodeMeta implements memberlist.Delegate.
func (d nodeMeta) NodeMeta(limit int) []byte {
	if len(d) > limit {
		return nil
	}
	return d
}

// NotifyMsg implements memberlist.Delegate (no user messages).
func (nodeMeta) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate (no user broadcasts).
func (nodeMeta) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate (no push/pull state).
func (nodeMeta) LocalState(bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (nodeMeta) MergeRemoteState([]byte, bool) {}

// memberEvents is the memberlist event delegate: it notes where members
// gossip and wakes the leader's reconcile.
type memberEvents struct{ n *Node }

// NotifyJoin implements memberlist.EventDelegate.
func (e memberEvents) NotifyJoin(m *memberlist.Node) {
	e.n.log.Info("node up", "member", m.Name, "gossip", m.Address())
	e.n.gossip.note(m.Name, m.Address())
	e.wake()
}

// NotifyLeave implements memberlist.EventDelegate: the node stays a
// member of the cluster, shown as not running.
func (e memberEvents) NotifyLeave(m *memberlist.Node) {
	e.n.log.Info("node down", "member", m.Name, "gossip", m.Address())
	e.n.links.peerDown(m.Name)
	e.wake()
}

// NotifyUpdate implements memberlist.EventDelegate.
func (e memberEvents) NotifyUpdate(m *memberlist.Node) {
	e.n.gossip.note(m.Name, m.Address())
	e.wake()
}

func (e memberEvents) wake() {
	select {
	case e.n.events <- struct{}{}:
	default:
	}
}

// gossipBook remembers the gossip address of every node seen, in the
// raft store's stable part (this node's own, not replicated), so that a
// restarted node can find members that are not its seeds.
type gossipBook struct {
	mu    sync.Mutex
	addrs map[string]string
	dirty map[string]bool
}

const gossipKeyPrefix = "gossip/"

// open loads the book from store.
func (b *gossipBook) open(store *raftStore) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs, b.dirty = map[string]string{}, map[string]bool{}
	v, err := store.Get([]byte(gossipKeyPrefix))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(v), "\n") {
		if name, addr, ok := strings.Cut(line, " "); ok {
			b.addrs[name] = addr
		}
	}
	return nil
}

func (b *gossipBook) note(name, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.addrs != nil && b.addrs[name] != addr {
		b.addrs[name] = addr
		b.dirty[name] = true
	}
}

func (b *gossipBook) forget(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.addrs[name]; ok {
		delete(b.addrs, name)
		b.dirty[name] = true
	}
}

func (b *gossipBook) addr(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addrs[name]
}

// save writes the book if it changed (names have no spaces or newlines:
// memberlist names are written "name addr" one per line).
func (b *gossipBook) save(store *raftStore, log interface{ Warn(string, ...any) }) {
	b.mu.Lock()
	if len(b.dirty) == 0 {
		b.mu.Unlock()
		return
	}
	var sb strings.Builder
	for name, addr := range b.addrs {
		if !strings.ContainsAny(name, " \n") {
			fmt.Fprintf(&sb, "%s %s\n", name, addr)
		}
	}
	b.dirty = map[string]bool{}
	b.mu.Unlock()
	if err := store.Set([]byte(gossipKeyPrefix), []byte(sb.String())); err != nil {
		log.Warn("could not save the gossip addresses of the members", "err", err)
	}
}
