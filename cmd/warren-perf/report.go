package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
)

// report is what the matrix measured, rendered as docs/BENCHMARKS.md.
type report struct {
	brokers        []*broker // Warren first, then RabbitMQ when it ran
	rows           []row
	publishCeiling float64 // warren-perf into the discarding sink
	consumeCeiling float64 // warren-perf fed by the sink as a source
	client         string  // the producers' and consumers' client: clientFast or clientAMQP091
	command        string
	goals          []verdict // empty without RabbitMQ
	profiles       []profile // of the missed goals
}

// clientName describes a run's client in the report.
func clientName(client string) string {
	if client == clientAMQP091 {
		return "amqp091-go"
	}
	return "its own AMQP 0-9-1 client over Warren's codec: pre-encoded frames, one write per batch, deliveries parsed in place"
}

// rowName is how a scenario is named in the tables.
func rowName(s scenario) string {
	if len(s.id) == 1 {
		return "(" + s.id + ") " + s.title
	}
	return s.title
}

// find returns the row of scenario id.
func (r *report) find(id string) (row, bool) {
	for _, x := range r.rows {
		if x.s.id == id {
			return x, true
		}
	}
	return row{}, false
}

// matrixRows are the rows of the matrix's own table: every scenario's but
// the metadata and cluster scenarios', which have sections of their own.
func (r *report) matrixRows() []row {
	var out []row
	for _, x := range r.rows {
		if x.s.id != metaID && x.s.id != clusterID {
			out = append(out, x)
		}
	}
	return out
}

// render formats the matrix's part of the report as Markdown, or returns
// "" when the run measured none of its scenarios.
func (r *report) render() string {
	rows := r.matrixRows()
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Warren benchmarks\n\n")
	fmt.Fprintf(&b, "Measured with `%s` on %s; %s.\n\n", r.command, machine(), rabbitVersion())
	fmt.Fprintf(&b, "Throughput scenarios run for the same duration on each broker, the brokers alternating scenario by scenario; rates are averages after the first second of warm-up. Both brokers run on loopback on this machine, with warren-perf (%s) as the client on the same cores.\n\n", clientName(r.client))
	r.renderTable(&b, rows)
	r.renderMemoryNote(&b)
	r.renderCeilings(&b)
	if len(r.goals) > 0 {
		fmt.Fprintf(&b, "\n%s", renderGoals(r.goals))
	}
	if len(r.profiles) > 0 {
		fmt.Fprintf(&b, "\n%s", renderProfiles(r.profiles))
	}
	return b.String()
}

// machine describes the machine the figures come from.
func machine() string {
	return fmt.Sprintf("%s, %d cores, %s RAM, %s", cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version())
}

// renderTable writes rows as a table of figures: Warren's, and with
// RabbitMQ's, RabbitMQ's and their ratio.
func (r *report) renderTable(b *strings.Builder, rows []row) {
	two := len(r.brokers) > 1
	fmt.Fprintf(b, "| scenario | figure | Warren |")
	if two {
		fmt.Fprintf(b, " RabbitMQ | Warren / RabbitMQ |")
	}
	fmt.Fprintf(b, "\n|---|---|---|")
	if two {
		fmt.Fprintf(b, "---|---|")
	}
	fmt.Fprintf(b, "\n")
	for _, x := range rows {
		for _, col := range x.s.columns {
			w := x.figures[0][col]
			fmt.Fprintf(b, "| %s | %s | %s |", rowName(x.s), col, format(w))
			if two {
				rb := x.figures[1][col]
				ratio := "—"
				if rb > 0 && w > 0 {
					ratio = fmt.Sprintf("%.2f", w/rb)
				}
				fmt.Fprintf(b, " %s | %s |", format(rb), ratio)
			}
			fmt.Fprintf(b, "\n")
		}
	}
}

// renderMemoryNote says how scenario (g) reads memory.
func (r *report) renderMemoryNote(b *strings.Builder) {
	g, ok := r.find("g")
	if !ok {
		return
	}
	fmt.Fprintf(b, "\nIn (g), RSS is VmRSS from /proc of one OS process per broker: `warren` for Warren; for RabbitMQ `beam.smp`, the Erlang VM that runs the whole node. ")
	fmt.Fprintf(b, "KiB per conn is (RSS with %s idle connections − RSS before them) / %s; before them Warren had %s MiB",
		formatCount(idleConns), formatCount(idleConns), format(g.figures[0]["RSS MiB before"]))
	if len(g.figures) > 1 {
		rf := g.figures[1]
		fmt.Fprintf(b, " and RabbitMQ %s MiB. Not counted for RabbitMQ: beam.smp's child processes (erl_child_setup, inet_gethost, the disk monitor's sh: %s MiB together) and epmd, the port mapper shared by every Erlang node on the machine. ",
			format(rf["RSS MiB before"]), format(rf["children RSS MiB"]))
		fmt.Fprintf(b, "RabbitMQ ran with an open files limit of %s (run as root, warren-perf starts it as the rabbitmq user itself: Debian's wrapper switches user with su, whose pam_limits resets the limit to 1,024, and RabbitMQ then refuses connections past about 830).\n",
			format(rf["open files limit"]))
		return
	}
	fmt.Fprintf(b, ".\n")
}

// renderCeilings states warren-perf's own limits and how close Warren's
// figures come to them, per producer and per consumer connection.
func (r *report) renderCeilings(b *strings.Builder) {
	fmt.Fprintf(b, "\nwarren-perf's own ceiling, with the scenarios' client, one connection each way, 16 B messages: publishing, %s msg/s from one producer (no confirms) into a sink that only reads and discards; consuming, %s msg/s for one consumer (prefetch 1000, multi-ack 100) fed by that sink acting as a broker that delivers as fast as the prefetch allows. The sink runs inside warren-perf, on the same cores, so both figures are conservative. ",
		format(r.publishCeiling), format(r.consumeCeiling))
	if d, ok := r.find("drain"); ok {
		fmt.Fprintf(b, "From a real broker, the same consumer drained a prefilled queue of %s messages at %s msg/s from Warren",
			formatCount(drainMessages), format(d.figures[0]["consume msg/s"]))
		if len(d.figures) > 1 {
			fmt.Fprintf(b, " and %s from RabbitMQ", format(d.figures[1]["consume msg/s"]))
		}
		fmt.Fprintf(b, " (the row above). ")
	}
	fmt.Fprintf(b, "A rate close to a ceiling may be warren-perf's limit rather than the broker's; the two tools share the machine's %d cores with the broker, so several connections together meet a lower ceiling:\n\n", runtime.NumCPU())
	fmt.Fprintf(b, "| scenario | Warren publish per producer / publish ceiling | Warren consume per consumer / consume ceiling |\n|---|---|---|\n")
	for _, x := range r.rows {
		if len(x.s.id) != 1 || !slices.Contains(x.s.columns, "consume msg/s") {
			continue
		}
		w := x.figures[0]
		fmt.Fprintf(b, "| %s | %s | %s |\n", rowName(x.s),
			percentOf(w["publish msg/s"]/float64(max(x.s.cfg.Producers, 1)), r.publishCeiling),
			percentOf(w["consume msg/s"]/float64(max(x.s.cfg.Consumers, 1)), r.consumeCeiling))
	}
}

// percentOf formats v as a percentage of ceiling.
func percentOf(v, ceiling float64) string {
	if v <= 0 || ceiling <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*v/ceiling)
}

// formatCount writes n with thousands separators.
func formatCount(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
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
