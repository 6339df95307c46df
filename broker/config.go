package broker

import (
	"log/slog"
	"time"

	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/queue"
)

// Config is the broker's configuration. DefaultConfig returns one that runs
// on a laptop with no setup; callers change the fields they care about.
type Config struct {
	// AMQPListen is the TCP address of the AMQP listener.
	AMQPListen string
	// DataDir holds the durable store.
	DataDir string
	// ChannelMax, FrameMax and Heartbeat are proposed in connection.tune.
	ChannelMax uint16
	FrameMax   uint32
	Heartbeat  time.Duration
	// MaxMessageSize is the largest message body accepted (RabbitMQ: 128 MiB).
	MaxMessageSize uint64
	// HandshakeTimeout bounds the time from accept to connection.open.
	HandshakeTimeout time.Duration
	// DefaultUser and DefaultPass create the first user (an administrator)
	// with full permissions on DefaultVhost when the broker starts with no users.
	DefaultUser  string
	DefaultPass  string
	DefaultVhost string
	// LoopbackUsers may connect only from loopback addresses.
	LoopbackUsers []string
	// MemoryHighWatermark is the fraction of RAM above which publishers are
	// blocked (RabbitMQ's vm_memory_high_watermark); MemoryLimit, when
	// non-zero, is an absolute limit in bytes that takes precedence.
	MemoryHighWatermark float64
	MemoryLimit         uint64
	// DiskFreeLimit blocks publishers when the data directory's file
	// system has less free space (bytes; 0: no check).
	DiskFreeLimit uint64
	// AlarmInterval is how often memory and disk are sampled.
	AlarmInterval time.Duration
	// QueuePaging bounds the ready messages each queue keeps in memory
	// (its Pager is set per queue); past it they are read from the store
	// as consumers approach them. Zero bounds keep everything in memory.
	QueuePaging queue.Paging
	// PagingRatio is RabbitMQ's vm_memory_high_watermark_paging_ratio:
	// messages that paging would have to write (transient ones, those of
	// non-durable queues) leave memory only while the broker uses more
	// than PagingRatio times the memory high watermark. 0 pages them
	// whenever a queue passes its bound.
	PagingRatio float64
	// NodeID, when not 0, replaces the data dir's node id (1..
	// store.MaxNodeID), the node part of every message id; the data dir
	// keeps it. A cluster sets it to keep node ids unique. 0 keeps the id
	// drawn at random when the data dir was created (Server.NodeID).
	NodeID uint16
	// MetaLog, when set, opens the metadata log in place of the
	// single-node meta.Local over the store: a cluster passes its
	// replicated log here, so that the broker never imports the cluster.
	// It is called once from New, with the store and the applier through
	// which the broker follows every applied change; the log hands the
	// state it already holds to the applier before it returns. If the log
	// has a method Fresh() bool that reports true (this node started a new
	// cluster), the broker creates the default vhost and user through it,
	// once per cluster. If the log has a method Close() error, Close calls
	// it after the connections are closed and before the store is.
	//
	// With a MetaLog the metadata may arrive after New (from other
	// nodes), so the broker keeps stored messages of queues it does not
	// know yet, and a queue gets its stored messages whenever it is
	// created, not only at start.
	MetaLog func(st meta.Store, a meta.Applier) (meta.Log, error)
	// Remote, in a cluster, names this node and reaches the queues whose
	// home is another node (remote.go); the cluster sets it with MetaLog.
	// Queues declared here get a home (this node, or another with the
	// balanced locator), and queue records whose home is another node
	// become handles on that node's queue. nil: a standalone node, every
	// queue local.
	Remote Remote
	// Logger receives the broker's structured log; nil discards.
	Logger *slog.Logger
	// Product and Version are announced in connection.start.
	Product string
	Version string
}

// DefaultConfig returns the defaults: AMQP on :5672, data under ./data,
// guest/guest limited to loopback, the vhost "/".
func DefaultConfig() Config {
	return Config{
		AMQPListen:          ":5672",
		DataDir:             "./data",
		ChannelMax:          2047,
		FrameMax:            131072,
		Heartbeat:           60 * time.Second,
		MaxMessageSize:      128 << 20,
		HandshakeTimeout:    10 * time.Second,
		DefaultUser:         "guest",
		DefaultPass:         "guest",
		DefaultVhost:        "/",
		LoopbackUsers:       []string{"guest"},
		MemoryHighWatermark: 0.4,
		DiskFreeLimit:       50 << 20,
		AlarmInterval:       time.Second,
		QueuePaging:         queue.DefaultPaging(nil),
		PagingRatio:         0.5,
		Product:             "Warren",
		Version:             "0.1.0",
	}
}
