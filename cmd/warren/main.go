// Command warren is the Warren AMQP 0-9-1 broker.
//
// Settings come from flags, then WARREN_* environment variables (for
// example WARREN_AMQP_LISTEN), then defaults; flags win.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on --pprof
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/cluster"
	"github.com/warrenmq/warren/mgmtui"
	"github.com/warrenmq/warren/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "warren:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	amqpListen  string
	mgmtListen  string
	dataDir     string
	logLevel    string
	pprof       string
	definitions string
	memoryHigh  float64
	diskFree    uint64
	queueMsgs   uint64
	queueBytes  uint64
	gcFloor     uint64

	nodeName      string
	clusterListen string
	clusterJoin   string
}

// envOr returns the WARREN_<name> environment variable, or def.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv("WARREN_" + name); ok {
		return v
	}
	return def
}

// envFloat returns WARREN_<name> as a float, or def when unset or invalid.
func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(envOr(name, ""), 64); err == nil {
		return v
	}
	return def
}

// envUint returns WARREN_<name> as an unsigned integer, or def when unset or invalid.
func envUint(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(envOr(name, ""), 10, 64); err == nil {
		return v
	}
	return def
}

func parseFlags(args []string) (options, error) {
	def := broker.DefaultConfig()
	var o options
	fs := flag.NewFlagSet("warren", flag.ContinueOnError)
	fs.StringVar(&o.amqpListen, "amqp-listen", envOr("AMQP_LISTEN", def.AMQPListen), "AMQP listen address (WARREN_AMQP_LISTEN)")
	fs.StringVar(&o.mgmtListen, "mgmt-listen", envOr("MGMT_LISTEN", ":15672"), "management HTTP listen address, empty to disable (WARREN_MGMT_LISTEN)")
	fs.StringVar(&o.dataDir, "data-dir", envOr("DATA_DIR", def.DataDir), "data directory (WARREN_DATA_DIR)")
	fs.StringVar(&o.logLevel, "log-level", envOr("LOG_LEVEL", "info"), "log level: debug, info, warn, error (WARREN_LOG_LEVEL)")
	fs.Float64Var(&o.memoryHigh, "memory-high-watermark", envFloat("MEMORY_HIGH_WATERMARK", def.MemoryHighWatermark), "fraction of RAM above which publishers are blocked (WARREN_MEMORY_HIGH_WATERMARK)")
	fs.Uint64Var(&o.diskFree, "disk-free-limit", envUint("DISK_FREE_LIMIT", def.DiskFreeLimit), "free bytes on the data dir's disk below which publishers are blocked (WARREN_DISK_FREE_LIMIT)")
	fs.Uint64Var(&o.queueMsgs, "queue-memory-messages", envUint("QUEUE_MEMORY_MESSAGES", uint64(def.QueuePaging.MaxMessages)), "ready messages a queue keeps in memory before paging the rest to disk, 0 for no bound (WARREN_QUEUE_MEMORY_MESSAGES)")
	fs.Uint64Var(&o.queueBytes, "queue-memory-bytes", envUint("QUEUE_MEMORY_BYTES", uint64(def.QueuePaging.MaxBytes)), "body bytes of ready messages a queue keeps in memory before paging, 0 for no bound (WARREN_QUEUE_MEMORY_BYTES)")
	fs.Uint64Var(&o.gcFloor, "gc-memory-floor", envUint("GC_MEMORY_FLOOR", 160<<20), "bytes of Go memory below which the garbage collector runs as usual; above, garbage is held to a quarter of the live heap, 0 to leave the collector alone; GOMEMLIMIT overrides (WARREN_GC_MEMORY_FLOOR)")
	fs.StringVar(&o.definitions, "definitions", envOr("DEFINITIONS", ""), "RabbitMQ definitions JSON file imported at start, as RabbitMQ's load_definitions (WARREN_DEFINITIONS)")
	fs.StringVar(&o.pprof, "pprof", envOr("PPROF", ""), "listen address for net/http/pprof, empty to disable (WARREN_PPROF)")
	fs.StringVar(&o.nodeName, "node-name", envOr("NODE_NAME", cluster.DefaultConfig().NodeName), "this node's name in the cluster and the management API (WARREN_NODE_NAME)")
	fs.StringVar(&o.clusterListen, "cluster-listen", envOr("CLUSTER_LISTEN", ""), "HOST:PORT of cluster gossip (TCP and UDP); inter-node traffic uses PORT+1; empty runs a standalone node (WARREN_CLUSTER_LISTEN)")
	fs.StringVar(&o.clusterJoin, "cluster-join", envOr("CLUSTER_JOIN", ""), "HOST:PORT[,HOST:PORT...] gossip addresses of nodes of the cluster to join; a node started without it on an empty data dir founds a new cluster (WARREN_CLUSTER_JOIN)")
	return o, fs.Parse(args)
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToLower(o.logLevel))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := broker.DefaultConfig()
	cfg.AMQPListen = o.amqpListen
	cfg.DataDir = o.dataDir
	cfg.MemoryHighWatermark = o.memoryHigh
	cfg.DiskFreeLimit = o.diskFree
	cfg.QueuePaging.MaxMessages = int(min(o.queueMsgs, math.MaxInt32))
	cfg.QueuePaging.MaxBytes = int64(min(o.queueBytes, math.MaxInt64))
	cfg.Logger = log

	var node *cluster.Node
	if o.clusterListen != "" {
		node, err = newClusterNode(o, log)
		if err != nil {
			return err
		}
		defer node.Close()
		cfg.MetaLog = node.OpenLog
		cfg.Remote = node
	} else if o.clusterJoin != "" {
		return errors.New("--cluster-join needs --cluster-listen")
	}

	sopts := store.DefaultOptions()
	sopts.Logger = log
	st, err := store.Open(cfg.DataDir, sopts)
	if err != nil {
		return err
	}
	// Signals are caught before the listener accepts anyone, so that a
	// client connected at once still sees a clean shutdown.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	srv, err := broker.New(cfg, st)
	if err != nil {
		st.Close()
		return err
	}
	if o.definitions != "" {
		if err := importDefinitions(srv, o.definitions); err != nil {
			srv.Close(context.Background())
			return err
		}
		log.Info("definitions imported", "file", o.definitions)
	}
	ln, err := net.Listen("tcp", cfg.AMQPListen)
	if err != nil {
		srv.Close(context.Background())
		return fmt.Errorf("listen amqp %s: %w", cfg.AMQPListen, err)
	}
	if o.pprof != "" {
		go func() {
			log.Info("pprof listening", "addr", o.pprof)
			if err := http.ListenAndServe(o.pprof, nil); err != nil {
				log.Error("pprof server failed", "err", err)
			}
		}()
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	var mgmt *http.Server
	// A cluster node runs the management API even without a listener:
	// the other nodes' APIs ask it for its connections and figures.
	if o.mgmtListen != "" || node != nil {
		mopts := mgmtui.Options{Node: o.nodeName, AMQPAddr: ln.Addr().String(), UI: mgmtui.UIHandler(), Logger: log}
		var mln net.Listener
		if o.mgmtListen != "" {
			if mln, err = net.Listen("tcp", o.mgmtListen); err != nil {
				ln.Close()
				srv.Close(context.Background())
				return fmt.Errorf("listen management %s: %w", o.mgmtListen, err)
			}
			mopts.HTTPAddr = mln.Addr().String()
		}
		if node != nil {
			mopts.Cluster = mgmtCluster{node}
		}
		api := mgmtui.New(srv, mopts)
		defer api.Close()
		if node != nil {
			node.SetQueryHandler(api.AnswerPeer)
			defer node.SetQueryHandler(nil)
		}
		if mln != nil {
			mgmt = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				if err := mgmt.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					serveErr <- fmt.Errorf("management listener: %w", err)
				}
			}()
			log.Info("management listening", "addr", mln.Addr().String())
		}
	}
	log.Info("warren started", "amqp", ln.Addr().String(), "data_dir", cfg.DataDir)
	tuneCtx, stopTuning := context.WithCancel(context.Background())
	defer stopTuning()
	go newGCTuner(int64(min(o.gcFloor, math.MaxInt64)), 0.25).run(tuneCtx, time.Second, log)

	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case err := <-serveErr:
		if err != nil {
			log.Error("amqp listener failed", "err", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if mgmt != nil {
		if err := mgmt.Shutdown(ctx); err != nil {
			log.Warn("management shutdown", "err", err)
		}
	}
	if err := srv.Close(ctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newClusterNode configures this node's clustering from the options:
// gossip on --cluster-listen, inter-node traffic on the next port, the
// seeds of --cluster-join, raft's data under <data-dir>/cluster. Nothing
// runs until the broker opens its metadata log through it.
func newClusterNode(o options, log *slog.Logger) (*cluster.Node, error) {
	host, port, err := net.SplitHostPort(o.clusterListen)
	if err != nil {
		return nil, fmt.Errorf("--cluster-listen %q: %w", o.clusterListen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p >= 65535 {
		return nil, fmt.Errorf("--cluster-listen %q: the port must be between 1 and 65534 (the next one carries inter-node traffic)", o.clusterListen)
	}
	cc := cluster.DefaultConfig()
	cc.NodeName = o.nodeName
	cc.BindAddr = host
	cc.BindPort = p
	cc.DataDir = filepath.Join(o.dataDir, "cluster")
	cc.Logger = log
	for _, seed := range strings.Split(o.clusterJoin, ",") {
		if seed = strings.TrimSpace(seed); seed == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(seed); err != nil {
			return nil, fmt.Errorf("--cluster-join %q: %w", seed, err)
		}
		cc.Join = append(cc.Join, seed)
	}
	return cluster.New(cc)
}

// importDefinitions loads a RabbitMQ definitions file into srv.
func importDefinitions(srv *broker.Server, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--definitions: %w", err)
	}
	defer f.Close()
	var d broker.Definitions
	if err := json.NewDecoder(f).Decode(&d); err != nil {
		return fmt.Errorf("--definitions %s: invalid JSON: %w", path, err)
	}
	if err := srv.ImportDefinitions(d, ""); err != nil {
		return fmt.Errorf("--definitions %s: %w", path, err)
	}
	return nil
}
