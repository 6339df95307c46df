package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/meta"
)

// Node is one member of a Warren cluster: it owns the node's memberlist
// (who is up) and its raft instance (the replicated metadata log), and is
// the broker's meta.Log (given to broker.Config.MetaLog as OpenLog).
type Node struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // serialises OpenLog and Close
	started bool
	closed  atomic.Bool

	store    *raftStore
	fsm      *fsm
	trans    *raft.NetworkTransport
	raft     *raft.Raft
	inter    *interNode
	links    *links // queue links to the other nodes (remote queues)
	ml       *memberlist.Memberlist
	raftAddr string
	fresh    bool

	gossip gossipBook                   // where members gossip, for rejoining them
	events chan struct{}                // a member joined, left or changed: the leader reconciles
	ready  atomic.Bool                  // leader, and every entry before its term is applied
	query  atomic.Pointer[QueryHandler] // answers the other nodes' queries (query.go)

	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ meta.Log      = (*Node)(nil)
	_ broker.Remote = (*Node)(nil)
)

// New returns a node with cfg, not started: OpenLog starts it.
func New(cfg Config) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("node", cfg.NodeName)
	n := &Node{cfg: cfg, log: log, events: make(chan struct{}, 1), stop: make(chan struct{})}
	n.links = newLinks(cfg.NodeName, log, n.memberAddr)
	return n, nil
}

// OpenLog starts the node and returns it as the broker's metadata log:
// its signature is broker.Config.MetaLog's. It opens raft's store in the
// data dir, restores the last snapshot and replays the entries known to
// be committed (handing that state to applier before it returns),
// bootstraps a new cluster if this node has no raft state and no seeds,
// and starts gossip, which joins the seeds. The broker's store is not
// used: raft keeps its own under DataDir.
func (n *Node) OpenLog(_ meta.Store, applier meta.Applier) (meta.Log, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.closed.Load() {
		return nil, errors.New("cluster node already started")
	}
	n.started = true
	if err := n.start(applier); err != nil {
		n.shutdown()
		return nil, err
	}
	return n, nil
}

// replayTimeout bounds the replay of the committed entries at start.
const replayTimeout = time.Minute

func (n *Node) start(applier meta.Applier) error {
	cfg := n.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("cluster data dir: %w", err)
	}
	var err error
	if n.store, err = openRaftStore(filepath.Join(cfg.DataDir, "raft"), n.log); err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, newHclog(n.log, "raft-snapshots"))
	if err != nil {
		return fmt.Errorf("raft snapshot store: %w", err)
	}
	bindIP, advertiseIP, err := addresses(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bindIP, strconv.Itoa(cfg.interNodePort())))
	if err != nil {
		return fmt.Errorf("inter-node listener: %w", err)
	}
	n.inter = newInterNode(ln, n.log)
	n.inter.handle = n.serveRPC
	n.inter.link = n.links.accept
	port := ln.Addr().(*net.TCPAddr).Port
	n.raftAddr = net.JoinHostPort(advertiseIP, strconv.Itoa(port))
	layer := &raftLayer{m: n.inter, advertise: &net.TCPAddr{IP: net.ParseIP(advertiseIP), Port: port}, closed: make(chan struct{})}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: newHclog(n.log, "raft-net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeName)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = newHclog(n.log, "raft")
	// Replay at start what this node knew committed (raftStore tracks
	// it). Raft queues that replay in batches of MaxAppendEntries on a
	// channel of 128 before its FSM goroutine runs: 1,024 per batch keeps
	// the room (131,072 entries) far above what a snapshot every
	// SnapshotThreshold entries leaves behind.
	rc.RestoreCommittedLogs = true
	rc.MaxAppendEntries = 1024

	if _, err := foldCommittedTail(n.store, snaps, n.trans, n.log); err != nil {
		return fmt.Errorf("fold the committed raft log into a snapshot: %w", err)
	}
	hasState, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	target, err := replayTarget(n.store, snaps)
	if err != nil {
		return err
	}
	n.fsm = newFSM(applier, n.log)
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), replayTimeout)
	err = n.fsm.waitApplied(ctx, target)
	cancel()
	if err != nil {
		return fmt.Errorf("replay the metadata log: %w", err)
	}
	switch {
	case hasState:
		n.log.Info("cluster node restarted on its raft state", "applied", n.fsm.appliedIndex())
	case len(cfg.Join) == 0:
		// The one safe rule: only a node started without seeds founds a
		// cluster, and only once (with no raft state). Nodes with seeds
		// never bootstrap: they wait for a leader to add them.
		conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(n.raftAddr)}}}
		if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
			return fmt.Errorf("bootstrap the cluster: %w", err)
		}
		n.fresh = true
		n.log.Info("new cluster bootstrapped; this node is its first member", "raft", n.raftAddr)
	default:
		n.log.Info("waiting to be added to the cluster of the seeds", "seeds", cfg.Join)
	}
	n.inter.serve()

	if err := n.gossip.open(n.store); err != nil {
		return err
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr = bindIP
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = advertiseIP
	mc.AdvertisePort = cfg.BindPort
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.GossipInterval = cfg.GossipInterval
	mc.SuspicionMult = cfg.SuspicionMult
	// A node back under its name from another address is let in once
	// the old one has been dead for a while (the default never does
	// until the dead node is forgotten by the gossip).
	mc.DeadNodeReclaimTime = 10 * cfg.ProbeInterval
	if cfg.PushPullInterval > 0 {
		mc.PushPullInterval = cfg.PushPullInterval
	}
	mc.Delegate = nodeMeta(encodeNodeMeta(n.raftAddr))
	mc.Events = memberEvents{n}
	mc.Logger = stdlog.New(levelWriter{log: n.log, component: "memberlist"}, "", 0)
	if n.ml, err = memberlist.Create(mc); err != nil {
		return fmt.Errorf("start gossip on %s:%d: %w", bindIP, cfg.BindPort, err)
	}
	n.log.Info("cluster node started", "gossip", n.ml.LocalNode().Address(), "raft", n.raftAddr, "seeds", cfg.Join)

	n.wg.Add(2)
	go n.monitorLeadership()
	go n.rejoinLoop()
	return nil
}

// addresses returns the IP to bind and the one to advertise.
func addresses(cfg Config) (bind, advertise string, err error) {
	bind = cfg.BindAddr
	if bind == "" {
		bind = "0.0.0.0"
	}
	if net.ParseIP(bind) == nil {
		ips, err := net.LookupIP(bind)
		if err != nil || len(ips) == 0 {
			return "", "", fmt.Errorf("cluster bind address %q: %w", bind, err)
		}
		bind = ips[0].String()
		for _, ip := range ips {
			if ip.To4() != nil {
				bind = ip.String()
				break
			}
		}
	}
	advertise = cfg.AdvertiseAddr
	switch {
	case advertise != "":
		if net.ParseIP(advertise) == nil {
			return "", "", fmt.Errorf("cluster advertise address %q is not an IP address", advertise)
		}
	case !net.ParseIP(bind).IsUnspecified():
		advertise = bind
	default:
		advertise, err = sockaddr.GetPrivateIP()
		if err != nil || advertise == "" {
			return "", "", fmt.Errorf("no private IP address to advertise to the other nodes (set one explicitly): %v", err)
		}
	}
	return bind, advertise, nil
}

// replayTarget is the last command that this node knew committed and
// that its latest snapshot does not hold: NewRaft replays up to it.
func replayTarget(store *raftStore, snaps raft.SnapshotStore) (uint64, error) {
	commit, err := store.GetCommitIndex()
	if err != nil {
		return 0, err
	}
	var snapIndex uint64
	list, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(list) > 0 {
		snapIndex = list[0].Index
	}
	if commit <= snapIndex {
		return 0, nil
	}
	idx, found, err := store.lastCommandAtOrBelow(commit)
	if err != nil || !found || idx <= snapIndex {
		return 0, err
	}
	return idx, nil
}

// Fresh reports whether this node bootstrapped a new cluster when it
// started: the broker then creates the default vhost and user, once for
// the whole cluster.
func (n *Node) Fresh() bool { return n.fresh }

// View implements meta.Log: this node's state, which may trail the
// leader's (CatchUp).
func (n *Node) View(fn func(*meta.State)) { n.fsm.view(fn) }

// Propose implements meta.Log. The op goes to the leader (this node or,
// over the inter-node port, another), which appends it to the raft log;
// once a majority has it, every node applies it. Propose returns when it
// is applied here too, with the check's answer (the same on every node).
// Without a leader and a majority it fails within ProposeTimeout (or
// ctx) with a 541 INTERNAL_ERROR that says so.
func (n *Node) Propose(ctx context.Context, op meta.Op) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	data := meta.AppendOp(nil, op)
	rep, remote, err := n.onLeader(ctx, rpcPropose, data, func() (reply, error) { return n.applyAsLeader(ctx, data) })
	if err != nil {
		return n.unavailable(op.String(), err)
	}
	if remote {
		if err := n.fsm.waitApplied(ctx, rep.index); err != nil {
			return amqp.Errorf(amqp.InternalError, "%s was applied by the cluster but not yet on node %s: %v", op, n.cfg.NodeName, err)
		}
	}
	return rep.err
}

// CatchUp implements meta.Log: it asks the leader for its commit index
// (the leader first confirms that a majority still follows it) and waits
// until this node has applied that far.
func (n *Node) CatchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	rep, _, err := n.onLeader(ctx, rpcReadIndex, nil, func() (reply, error) {
		idx, err := n.readIndexAsLeader(ctx)
		return reply{index: idx}, err
	})
	if err != nil {
		return n.unavailable("catching up with the cluster", err)
	}
	return n.fsm.waitApplied(ctx, rep.index)
}

// unavailable turns a failure to reach a leader and a majority into the
// error a client gets.
func (n *Node) unavailable(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return amqp.Errorf(amqp.InternalError, "%s failed: the cluster has no leader with a majority of its voting members reachable from node %s (waited %s)",
			what, n.cfg.NodeName, n.cfg.ProposeTimeout)
	}
	return amqp.Errorf(amqp.InternalError, "%s failed on node %s: %v (without a leader and a majority, a change is applied on every node or on none)", what, n.cfg.NodeName, err)
}

// leaderPoll is how often a request waiting for a leader looks again.
const leaderPoll = 20 * time.Millisecond

// onLeader runs local when this node leads, or sends the request to the
// leader, until one of them answers or ctx ends; it retries while there
// is no leader, while the one it knew has moved, and while the leader
// cannot be reached (nothing was sent then). remote tells whether the
// leader was another node. The reply's status is statusOK on success.
func (n *Node) onLeader(ctx context.Context, kind byte, payload []byte, local func() (reply, error)) (rep reply, remote bool, err error) {
	for {
		if n.isClosed() {
			return reply{}, false, errors.New("the node is shutting down")
		}
		addr, id := n.raft.LeaderWithID()
		switch {
		case id == "":
			// No leader known: an election is on, or no majority.
		case string(id) == n.cfg.NodeName:
			rep, err := local()
			if !errors.Is(err, errNotLeader) {
				return rep, false, err
			}
		default:
			rep, err := call(ctx, string(addr), kind, payload)
			var unreachable *unreachableError
			switch {
			case errors.As(err, &unreachable):
				n.log.Debug("leader unreachable, retrying", "leader", id, "err", err)
			case err != nil:
				return reply{}, true, err
			case rep.status == statusNotLeader:
			case rep.status == statusFailed:
				return reply{}, true, rep.err
			default:
				return rep, true, nil
			}
		}
		select {
		case <-ctx.Done():
			return reply{}, false, ctx.Err()
		case <-time.After(leaderPoll):
		}
	}
}

// applyAsLeader appends an op to the raft log on this node, the leader,
// and once it is applied here replies with its index and its check's
// answer (reply.err).
func (n *Node) applyAsLeader(ctx context.Context, data []byte) (reply, error) {
	if n.raft.State() != raft.Leader {
		return reply{}, errNotLeader
	}
	f := n.raft.Apply(data, remaining(ctx))
	if err := waitFuture(ctx, f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return reply{}, errNotLeader
		}
		return reply{}, err
	}
	check, _ := f.Response().(error)
	return reply{index: f.Index(), err: check}, nil
}

// readIndexAsLeader returns the index up to which a node must have
// applied to have seen every change this leader had committed when asked:
// the last command at or below the commit index, read after a majority
// confirmed the leadership (raft's read-index).
func (n *Node) readIndexAsLeader(ctx context.Context) (uint64, error) {
	for !n.ready.Load() {
		if n.raft.State() != raft.Leader {
			return 0, errNotLeader
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, errNotLeader
		}
		return 0, err
	}
	commit := n.raft.CommitIndex()
	idx, found, err := n.store.lastCommandAtOrBelow(commit)
	if err != nil {
		return 0, err
	}
	if !found {
		// Every command is in the snapshot, which this leader applied.
		idx = n.fsm.appliedIndex()
	}
	return idx, nil
}

// remaining is the time left before ctx's deadline (raft's enqueue timeout).
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}

// waitFuture waits for f, or for ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leader returns the name of the raft leader, or "" when there is none.
func (n *Node) Leader() string {
	if !n.running() {
		return ""
	}
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// RaftAddr returns the node's inter-node address (raft and Warren's own
// requests), as the other nodes dial it.
func (n *Node) RaftAddr() string { return n.raftAddr }

// GossipAddr returns the node's memberlist address, as seeds list it.
func (n *Node) GossipAddr() string {
	if n.ml == nil {
		return ""
	}
	return n.ml.LocalNode().Address()
}

func (n *Node) isClosed() bool { return n.closed.Load() }

// errNotRunning is returned by the methods that need a started node.
var errNotRunning = errors.New("the cluster node is not running")

// running reports whether OpenLog started the node and Close has not
// stopped it.
func (n *Node) running() bool { return n.ml != nil && n.raft != nil && !n.closed.Load() }

// Close stops the node: it leaves the gossip (the others see it as
// stopped, not failed; it stays a cluster member), stops raft and closes
// its store. Proposals in flight fail. It is safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed.Load() {
		return nil
	}
	return n.shutdown()
}

// shutdown stops whatever start started; under n.mu.
func (n *Node) shutdown() error {
	n.closed.Store(true)
	close(n.stop)
	var errs []error
	if n.ml != nil {
		if err := n.ml.Leave(n.cfg.ProbeInterval * 2); err != nil {
			n.log.Debug("leaving the gossip", "err", err)
		}
		if err := n.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("stop gossip: %w", err))
		}
	}
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("stop raft: %w", err))
		}
	}
	if n.trans != nil {
		n.trans.Close()
	}
	n.links.close()
	if n.inter != nil {
		n.inter.close()
	}
	n.wg.Wait()
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft store: %w", err))
		}
	}
	return errors.Join(errs...)
}
