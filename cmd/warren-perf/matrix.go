package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// scenario is one row of the matrix.
type scenario struct {
	id, title string
	cfg       config
	measure   func(b *broker, c config) (map[string]float64, error)
	columns   []string // the figures it reports, in order
	higher    bool     // a higher first figure is better
}

// warrenOnly reports whether the scenario measures Warren alone: the
// cluster scenario starts Warren nodes of its own.
func (s scenario) warrenOnly() bool { return s.id == clusterID }

func throughput(b *broker, c config) (map[string]float64, error) {
	c.URI = b.uri
	c.Quiet = true
	cpu0, _ := cpuSeconds(b.pid)
	s, err := run(context.Background(), c, func(second) {})
	if err != nil {
		return nil, err
	}
	cpu1, _ := cpuSeconds(b.pid)
	out := map[string]float64{"consume msg/s": s.ConsumeRate, "publish msg/s": s.PublishRate,
		"p50 ms": s.P50, "p99 ms": s.P99}
	if s.Consumed > 0 {
		out["CPU s per 1M msgs"] = (cpu1 - cpu0) / float64(s.Consumed) * 1e6
	}
	return out, nil
}

// idleConns is the number of connections scenario (g) opens.
const idleConns = 1000

// idleConnections opens idleConns connections with one channel each and
// reads the broker process's RSS before and after. Only b.pid is counted:
// for RabbitMQ that is beam.smp; the RSS of its child processes is reported
// apart, as "children RSS MiB".
func idleConnections(b *broker, _ config) (map[string]float64, error) {
	// One connection with a channel first, so that code loaded or buffers
	// made by the first of them (RabbitMQ loads modules lazily) do not count
	// as per-connection memory.
	warm, err := openIdle(b.uri, 1)
	closeAll(warm)
	if err != nil {
		return nil, fmt.Errorf("warm-up connection: %w", err)
	}
	time.Sleep(time.Second) // let the broker tear it down (no event to wait for)
	before, err := rssKiB(b.pid)
	if err != nil {
		return nil, err
	}
	fig := map[string]float64{"RSS MiB before": float64(before) / 1024}
	if n, err := openFilesLimit(b.pid); err == nil {
		fig["open files limit"] = float64(n)
	}
	conns, err := openIdle(b.uri, idleConns)
	defer closeAll(conns)
	if err != nil {
		return fig, fmt.Errorf("%w (open files limit %.0f)", err, fig["open files limit"])
	}
	time.Sleep(2 * time.Second) // let the broker settle before reading RSS (no event to wait for)
	after, err := rssKiB(b.pid)
	if err != nil {
		return fig, err
	}
	fig["RSS MiB"] = float64(after) / 1024
	fig["KiB per conn"] = float64(after-before) / idleConns
	var children int
	for _, p := range descendants(b.pid) {
		if k, err := rssKiB(p); err == nil {
			children += k
		}
	}
	fig["children RSS MiB"] = float64(children) / 1024
	return fig, nil
}

// openIdle opens n connections with a channel each; on error it returns
// those it opened, for the caller to close.
func openIdle(uri string, n int) ([]*rmq.Connection, error) {
	var conns []*rmq.Connection
	for i := 0; i < n; i++ {
		c, err := dialRetry(uri, 3)
		if err != nil {
			return conns, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Channel(); err != nil {
			return conns, fmt.Errorf("channel on connection %d: %w", i, err)
		}
	}
	return conns, nil
}

func closeAll(conns []*rmq.Connection) {
	for _, c := range conns {
		c.Close()
	}
}

// dialRetry dials up to attempts times (a broker may be slow to accept a
// burst of connections).
func dialRetry(uri string, attempts int) (*rmq.Connection, error) {
	var err error
	for i := 0; i < attempts; i++ {
		var c *rmq.Connection
		if c, err = rmq.Dial(uri); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// scenarioATitle describes scenario (a), which the cluster scenario runs
// across nodes too.
const scenarioATitle = "1 producer, 1 consumer, 16 B, manual ack, prefetch 1000, multi-ack 100"

// drainMessages is the prefill of the consume-ceiling row.
const drainMessages = 500_000

func scenarios(d time.Duration) []scenario {
	base := config{Producers: 1, Consumers: 1, Queues: 1, Size: 16, Duration: d, Prefetch: 1000, MultiAck: 100,
		ExchangeType: "direct", RoutingKey: "perf.key"}
	b := base
	b.Confirm = 1000
	c := base
	c.Size, c.Persistent, c.Confirm = 1024, true, 1000
	dd := base
	dd.Producers, dd.Consumers, dd.Queues = 4, 4, 4
	e := base
	e.Queues, e.Consumers, e.ExchangeType = 10, 10, "fanout"
	f := base
	f.Rate = 1000
	drain := base
	drain.Prefill, drain.Duration = drainMessages, max(d, time.Minute) // the duration only bounds the drain
	meta := b
	meta.Duration = min(d, 5*time.Second) // the producer's rate without declares
	tp := []string{"consume msg/s", "publish msg/s"}
	// (g) runs first, on fresh brokers, so that RSS is not what earlier
	// scenarios left behind.
	return []scenario{
		{"g", "1,000 idle connections with a channel each", base, idleConnections, []string{"RSS MiB", "KiB per conn"}, false},
		{"a", scenarioATitle, base, throughput, tp, true},
		{"b", "as (a) with confirms, window 1000", b, throughput, tp, true},
		{"c", "1 KiB persistent, durable queue, confirms", c, throughput, tp, true},
		{"d", "4 producers, 4 consumers, 4 queues", dd, throughput, tp, true},
		{"e", "fanout, 1 producer to 10 queues with a consumer each", e, throughput, tp, true},
		{"f", "latency at 1,000 msg/s", f, throughput, []string{"p50 ms", "p99 ms"}, false},
		{"h", "broker CPU per million messages in (a)", base, throughput, []string{"CPU s per 1M msgs"}, false},
		{"drain", "consume ceiling: 1 consumer as in (a) drains a prefilled queue of 500,000 × 16 B", drain, throughput, []string{"consume msg/s"}, true},
		{metaID, fmt.Sprintf("metadata: 1 client declares %s durable queues, each bound to a topic exchange, while 1 producer as in (b) publishes to another queue", formatCount(metaQueues)),
			meta, func(b *broker, c config) (map[string]float64, error) { return metadata(b, c, metaQueues) }, metaColumns, true},
		{clusterID, "three Warren nodes on loopback: (a) across nodes, failure detection and leader failover, an idle cluster",
			base, func(b *broker, c config) (map[string]float64, error) { return measureCluster(b, c, clusterDefaults) }, clusterColumns, true},
	}
}

// runMatrix runs every scenario against Warren and, when installed,
// RabbitMQ, and writes the table.
func runMatrix(args []string) error {
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	bin := fs.String("warren", "bin/warren", "Warren binary")
	out := fs.String("out", "docs/BENCHMARKS.md", "report file")
	d := fs.Duration("d", 12*time.Second, "duration of each throughput scenario")
	noRabbit := fs.Bool("no-rabbitmq", false, "measure Warren only")
	only := fs.String("scenarios", "", "comma-separated scenario ids to run, e.g. g,a,drain,meta (default: all)")
	client := fs.String("client", clientFast, "the client of every scenario and of the ceilings: fast (Warren's codec, batched writes) or amqp091 (amqp091-go)")
	profile := fs.Bool("profile-missed", true, "rerun the scenario of each missed goal on Warren with a pprof profile and add its top functions to the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *client != clientFast && *client != clientAMQP091 {
		return fmt.Errorf("--client %q: want fast or amqp091", *client)
	}
	var stops []func()
	stopAll := sync.OnceFunc(func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	})
	defer stopAll()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() { // never leave a broker running behind an interrupted matrix
		if _, ok := <-sig; ok {
			stopAll()
			os.Exit(1)
		}
	}()

	warren, err := startWarren(*bin)
	if err != nil {
		return err
	}
	stops = append(stops, warren.stop)
	brokers := []*broker{warren}
	if !*noRabbit {
		rabbit, err := startRabbitMQ()
		if err != nil {
			fmt.Fprintln(os.Stderr, "RabbitMQ not measured:", err)
		} else if rabbit != nil {
			stops = append(stops, rabbit.stop)
			brokers = append(brokers, rabbit)
		}
	}
	var rows []row
	for _, s := range scenarios(*d) {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), s.id) {
			continue
		}
		s.cfg.Client = *client
		r := row{s: s}
		for _, b := range brokers { // alternate the brokers scenario by scenario
			if s.warrenOnly() && b != warren {
				r.figures, r.errs = append(r.figures, map[string]float64{}), append(r.errs, nil)
				continue
			}
			fmt.Fprintf(os.Stderr, "(%s) %s on %s...\n", s.id, s.title, b.name)
			fig, err := s.measure(b, s.cfg)
			if err != nil {
				fmt.Fprintf(os.Stderr, "(%s) %s failed: %v\n", s.id, b.name, err)
				if fig == nil {
					fig = map[string]float64{}
				}
			}
			r.figures, r.errs = append(r.figures, fig), append(r.errs, err)
		}
		rows = append(rows, r)
	}
	rep := report{brokers: brokers, rows: rows, client: *client, command: strings.Join(os.Args, " ")}
	if len(rep.matrixRows()) > 0 { // the ceilings are for the matrix's table
		fmt.Fprintln(os.Stderr, "warren-perf's own publish and consume ceilings against its sink...")
		rep.publishCeiling, rep.consumeCeiling = publishCeiling(*d, *client), consumeCeiling(*d, *client)
	}
	if len(brokers) > 1 {
		rep.goals = evaluateGoals(rows)
		if *profile {
			rep.profiles = profileMissed(warren, rep.goals, rows)
		}
	}
	text, meta, clustered := rep.render(), rep.renderMeta(), rep.renderCluster()
	fmt.Print(text, meta, clustered)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return fmt.Errorf("report dir: %w", err)
		}
		prev, err := os.ReadFile(*out)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read report: %w", err)
		}
		// The backlog benchmark's section is not the matrix's to rewrite,
		// nor are the parts of the report this run did not measure.
		measured := map[section]string{metaSection: meta, clusterSection: clustered}
		if err := os.WriteFile(*out, []byte(composeReport(string(prev), text, measured)), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// publishCeiling measures warren-perf's own publish rate (one producer, no
// confirms, the scenarios' client) into its sink, which reads and discards.
func publishCeiling(d time.Duration, client string) float64 {
	s, err := againstSink(config{Producers: 1, Duration: min(d, 5*time.Second), Client: client})
	if err != nil {
		return 0
	}
	return s.PublishRate
}

// consumeCeiling measures warren-perf's own consume rate (one consumer with
// the prefetch and multi-ack of (a), the scenarios' client) fed by its sink
// acting as a source.
func consumeCeiling(d time.Duration, client string) float64 {
	s, err := againstSink(config{Consumers: 1, Prefetch: 1000, MultiAck: 100, Duration: min(d, 5*time.Second), Client: client})
	if err != nil {
		return 0
	}
	return s.ConsumeRate
}

// againstSink runs c (16 B messages, one queue) against a sink of its own.
func againstSink(c config) (summary, error) {
	addr, stop, err := startSink()
	if err != nil {
		return summary{}, err
	}
	defer stop()
	c.URI = "amqp://guest:guest@" + addr + "/"
	c.Queues, c.Size, c.ExchangeType, c.RoutingKey, c.Quiet = 1, 16, "direct", "perf.key", true
	c.MultiAck = max(c.MultiAck, 1)
	return run(context.Background(), c, func(second) {})
}

// row is one scenario's figures, one map per broker, and the error each
// broker's measurement ended with (nil when it did not fail).
type row struct {
	s       scenario
	figures []map[string]float64
	errs    []error
}
