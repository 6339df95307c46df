package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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
	before, err := rssKiB(b.pid)
	if err != nil {
		return nil, err
	}
	fig := map[string]float64{"RSS MiB before": float64(before) / 1024}
	if n, err := openFilesLimit(b.pid); err == nil {
		fig["open files limit"] = float64(n)
	}
	var conns []*rmq.Connection
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < idleConns; i++ {
		c, err := dialRetry(b.uri, 3)
		if err != nil {
			return fig, fmt.Errorf("connection %d (open files limit %.0f): %w", i, fig["open files limit"], err)
		}
		conns = append(conns, c)
		if _, err := c.Channel(); err != nil {
			return fig, fmt.Errorf("channel on connection %d: %w", i, err)
		}
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
	tp := []string{"consume msg/s", "publish msg/s"}
	// (g) runs first, on fresh brokers, so that RSS is not what earlier
	// scenarios left behind.
	return []scenario{
		{"g", "1,000 idle connections with a channel each", base, idleConnections, []string{"RSS MiB", "KiB per conn"}, false},
		{"a", "1 producer, 1 consumer, 16 B, manual ack, prefetch 1000, multi-ack 100", base, throughput, tp, true},
		{"b", "as (a) with confirms, window 1000", b, throughput, tp, true},
		{"c", "1 KiB persistent, durable queue, confirms", c, throughput, tp, true},
		{"d", "4 producers, 4 consumers, 4 queues", dd, throughput, tp, true},
		{"e", "fanout, 1 producer to 10 queues with a consumer each", e, throughput, tp, true},
		{"f", "latency at 1,000 msg/s", f, throughput, []string{"p50 ms", "p99 ms"}, false},
		{"h", "broker CPU per million messages in (a)", base, throughput, []string{"CPU s per 1M msgs"}, false},
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
	only := fs.String("scenarios", "", "comma-separated scenario ids to run, e.g. g,a (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	warren, err := startWarren(*bin)
	if err != nil {
		return err
	}
	defer warren.stop()
	brokers := []*broker{warren}
	if !*noRabbit {
		rabbit, err := startRabbitMQ()
		if err != nil {
			fmt.Fprintln(os.Stderr, "RabbitMQ not measured:", err)
		} else if rabbit != nil {
			defer rabbit.stop()
			brokers = append(brokers, rabbit)
		}
	}
	var rows []row
	for _, s := range scenarios(*d) {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), s.id) {
			continue
		}
		r := row{s: s}
		for _, b := range brokers { // alternate the brokers scenario by scenario
			fmt.Fprintf(os.Stderr, "(%s) %s on %s...\n", s.id, s.title, b.name)
			fig, err := s.measure(b, s.cfg)
			if err != nil {
				fmt.Fprintf(os.Stderr, "(%s) %s failed: %v\n", s.id, b.name, err)
				fig = map[string]float64{}
			}
			r.figures = append(r.figures, fig)
		}
		rows = append(rows, r)
	}
	ceiling := selfCeiling(*d)
	report := renderReport(brokers, rows, ceiling, strings.Join(os.Args, " "))
	fmt.Print(report)
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(*out, []byte(report), 0o644)
	}
	return nil
}

// selfCeiling measures warren-perf's own publish rate into its sink.
func selfCeiling(d time.Duration) float64 {
	addr, stop, err := startSink()
	if err != nil {
		return 0
	}
	defer stop()
	c := config{URI: "amqp://guest:guest@" + addr + "/", Producers: 1, Queues: 1, Size: 16, Duration: min(d, 5*time.Second),
		MultiAck: 1, ExchangeType: "direct", Quiet: true}
	s, err := run(context.Background(), c, func(second) {})
	if err != nil {
		return 0
	}
	return s.PublishRate
}

// row is one scenario's figures, one map per broker.
type row struct {
	s       scenario
	figures []map[string]float64
}

// renderReport formats the matrix as Markdown.
func renderReport(brokers []*broker, rows []row, ceiling float64, command string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Warren benchmarks\n\n")
	fmt.Fprintf(&b, "Measured with `%s` on %s, %d cores, %s RAM, %s; %s.\n\n",
		command, cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), rabbitVersion())
	fmt.Fprintf(&b, "Throughput scenarios run for the same duration on each broker, the brokers alternating scenario by scenario; rates are averages after the first second of warm-up. Both brokers run on loopback on this machine, with warren-perf (amqp091-go) as the client on the same cores.\n\n")
	fmt.Fprintf(&b, "| scenario | figure | Warren |")
	if len(brokers) > 1 {
		fmt.Fprintf(&b, " RabbitMQ | Warren / RabbitMQ |")
	}
	fmt.Fprintf(&b, "\n|---|---|---|")
	if len(brokers) > 1 {
		fmt.Fprintf(&b, "---|---|")
	}
	fmt.Fprintf(&b, "\n")
	for _, r := range rows {
		for _, col := range r.s.columns {
			w := r.figures[0][col]
			fmt.Fprintf(&b, "| (%s) %s | %s | %s |", r.s.id, r.s.title, col, format(w))
			if len(brokers) > 1 {
				rb := r.figures[1][col]
				ratio := "—"
				if rb > 0 && w > 0 {
					ratio = fmt.Sprintf("%.2f", w/rb)
				}
				fmt.Fprintf(&b, " %s | %s |", format(rb), ratio)
			}
			fmt.Fprintf(&b, "\n")
		}
	}
	fmt.Fprintf(&b, "\nwarren-perf's own ceiling: %s msg/s published by one producer into a sink that only reads and discards (16 B messages).\n", format(ceiling))
	return b.String()
}

func format(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	raw, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			return f[1] + " kB"
		}
	}
	return "unknown"
}

func rabbitVersion() string {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server").Output()
	if err != nil {
		return "RabbitMQ not installed"
	}
	return "RabbitMQ " + string(out)
}
