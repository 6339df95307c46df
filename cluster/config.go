package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Config is a cluster node's configuration. DefaultConfig returns one for
// a LAN; callers change the fields they care about. Nothing here reads
// flags or the environment (cmd/warren does).
type Config struct {
	// NodeName names the node in the cluster: its memberlist name and its
	// raft server id, shown as RabbitMQ shows rabbit@host. It must be
	// unique in the cluster and stay the same across restarts.
	NodeName string
	// BindAddr and BindPort are where memberlist gossips, over TCP and
	// UDP. BindPort 0 takes a free port (tests).
	BindAddr string
	BindPort int
	// AdvertiseAddr is the IP address the other nodes reach this one at.
	// Empty: BindAddr, or, when that is unspecified (0.0.0.0), a private
	// address of this host as memberlist would choose it.
	AdvertiseAddr string
	// InterNodePort is the TCP port of the inter-node traffic: raft, and
	// Warren's own requests (forwarded proposals, catch-up, later queue
	// traffic), told apart by the first byte of each connection. 0 means
	// BindPort+1, or a free port when BindPort is 0.
	InterNodePort int
	// Join lists seed nodes, "host:port" of their gossip listeners. A node
	// started with no raft state and no seeds bootstraps a new cluster;
	// one with seeds waits to be added to the cluster they belong to.
	Join []string
	// DataDir holds raft's log and stable store (a Badger database under
	// raft/) and its snapshots (snapshots/).
	DataDir string

	// MaxVoters is how many members vote in raft; the others replicate
	// the log without voting (RabbitMQ-like clusters rarely need more
	// than five voters, and each voter slows commits).
	MaxVoters int
	// Raft timing (hashicorp/raft's fields of the same names).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is how many log entries raft keeps before it
	// takes a snapshot (checked every SnapshotInterval); TrailingLogs are
	// kept after one, so that a follower a little behind catches up from
	// the log rather than a whole snapshot.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// Gossip timing (memberlist's fields of the same names).
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	GossipInterval   time.Duration
	SuspicionMult    int
	PushPullInterval time.Duration
	// RejoinInterval is how often a node that is alone in memberlist
	// tries its seeds again, and any node tries to reach the raft members
	// that gossip lost (after a partition heals).
	RejoinInterval time.Duration
	// ReconcileInterval is how often the leader compares the memberlist
	// members with the raft configuration (besides on every join).
	ReconcileInterval time.Duration

	// ProposeTimeout bounds a proposal or a catch-up: without a leader
	// and a majority they fail after it with a clear error.
	ProposeTimeout time.Duration
	// Logger receives the node's structured log; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns settings for nodes on a LAN: gossip on port 7946
// (inter-node traffic on 7947), memberlist's LAN timing, raft's defaults,
// five voters, proposals bounded by 5 s, the node named warren@<hostname>.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Config{
		NodeName:           "warren@" + host,
		BindAddr:           "0.0.0.0",
		BindPort:           7946,
		DataDir:            "./data/cluster",
		MaxVoters:          5,
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotThreshold:  4096,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       4096,
		ProbeInterval:      time.Second,
		ProbeTimeout:       500 * time.Millisecond,
		GossipInterval:     200 * time.Millisecond,
		SuspicionMult:      4,
		PushPullInterval:   30 * time.Second,
		RejoinInterval:     2 * time.Second,
		ReconcileInterval:  5 * time.Second,
		ProposeTimeout:     4 * time.Second,
	}
}

// LoopbackConfig returns DefaultConfig with timing for nodes on one
// machine (tests, a cluster on loopback ports): failures are noticed and
// leaders elected in a fraction of a second, still with room for a busy
// machine running the race detector.
func LoopbackConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 200 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.SuspicionMult = 3
	c.PushPullInterval = 5 * time.Second
	c.RejoinInterval = 200 * time.Millisecond
	c.ReconcileInterval = time.Second
	return c
}

// check reports what makes c unusable.
func (c *Config) check() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("no node name"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("no data dir"))
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		errs = append(errs, fmt.Errorf("gossip port %d out of range", c.BindPort))
	}
	if c.InterNodePort < 0 || c.InterNodePort > 65535 || (c.InterNodePort == 0 && c.BindPort == 65535) {
		errs = append(errs, fmt.Errorf("inter-node port %d out of range", c.InterNodePort))
	}
	if c.InterNodePort != 0 && c.InterNodePort == c.BindPort {
		errs = append(errs, errors.New("the inter-node port must differ from the gossip port"))
	}
	if c.MaxVoters < 1 {
		errs = append(errs, errors.New("MaxVoters must be at least 1"))
	}
	if c.ProposeTimeout <= 0 || c.HeartbeatTimeout <= 0 || c.ElectionTimeout <= 0 || c.LeaderLeaseTimeout <= 0 ||
		c.CommitTimeout <= 0 || c.ProbeInterval <= 0 || c.ProbeTimeout <= 0 || c.GossipInterval <= 0 ||
		c.RejoinInterval <= 0 || c.ReconcileInterval <= 0 || c.SnapshotInterval <= 0 {
		errs = append(errs, errors.New("every timeout and interval must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster config: %w", err)
	}
	return nil
}

// interNodePort is the port of the inter-node listener (0: a free one).
func (c *Config) interNodePort() int {
	if c.InterNodePort != 0 || c.BindPort == 0 {
		return c.InterNodePort
	}
	return c.BindPort + 1
}
