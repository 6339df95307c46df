package mgmtui

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// metrics serves Prometheus' text format with RabbitMQ's metric names
// where a counterpart exists; queue metrics are labelled by vhost and queue.
func (a *API) metrics(w http.ResponseWriter, _ *http.Request, _ *user) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	m := promWriter{w: bw}

	var stats broker.MessageStats
	var queues []broker.QueueInfo
	exchanges := 0
	for _, v := range a.srv.Vhosts() {
		vs := v.MessageStats()
		stats.Add(&vs)
		for _, q := range v.Queues() {
			if _, remote := q.(broker.RemoteQueue); remote {
				continue // per node, as RabbitMQ's: its home reports it
			}
			queues = append(queues, q.Info())
		}
		exchanges += len(v.Exchanges())
	}
	conns := a.srv.ConnectionInfos()
	channels := 0
	for _, c := range conns {
		channels += c.Channels
	}
	consumers := len(a.srv.ConsumerInfos())

	m.gauge("rabbitmq_connections", "Connections currently open", float64(len(conns)))
	m.gauge("rabbitmq_channels", "Channels currently open", float64(channels))
	m.gauge("rabbitmq_consumers", "Consumers currently connected", float64(consumers))
	m.gauge("rabbitmq_queues", "Queues available", float64(len(queues)))
	m.gauge("rabbitmq_exchanges", "Exchanges available", float64(exchanges))

	routed := stats[broker.StatPublish] - min(stats[broker.StatPublish], stats[broker.StatDropUnroutable]+stats[broker.StatReturnUnroutable])
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"rabbitmq_global_messages_received_total", "Total number of messages received from publishers", stats[broker.StatPublish]},
		{"rabbitmq_global_messages_routed_total", "Total number of messages routed to queues or streams", routed},
		{"rabbitmq_global_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", stats[broker.StatDropUnroutable]},
		{"rabbitmq_global_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", stats[broker.StatReturnUnroutable]},
		{"rabbitmq_global_messages_confirmed_total", "Total number of messages confirmed to publishers", stats[broker.StatConfirm]},
		{"rabbitmq_global_messages_delivered_total", "Total number of messages delivered to consumers", deliverGet(&stats)},
		{"rabbitmq_global_messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", stats[broker.StatDeliver]},
		{"rabbitmq_global_messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", stats[broker.StatDeliverNoAck]},
		{"rabbitmq_global_messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", stats[broker.StatGet]},
		{"rabbitmq_global_messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", stats[broker.StatGetNoAck]},
		{"rabbitmq_global_messages_redelivered_total", "Total number of messages redelivered to consumers", stats[broker.StatRedeliver]},
		{"rabbitmq_global_messages_acknowledged_total", "Total number of messages acknowledged by consumers", stats[broker.StatAck]},
	} {
		m.counter(c.name, c.help, float64(c.v))
	}

	for _, g := range []struct {
		name, help string
		value      func(q broker.QueueInfo) float64
	}{
		{"rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth", func(q broker.QueueInfo) float64 { return float64(q.Ready + q.Unacked) }},
		{"rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers", func(q broker.QueueInfo) float64 { return float64(q.Ready) }},
		{"rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged", func(q broker.QueueInfo) float64 { return float64(q.Unacked) }},
		{"rabbitmq_queue_messages_bytes", "Size in bytes of ready messages", func(q broker.QueueInfo) float64 { return float64(q.ReadyBytes) }},
		{"rabbitmq_queue_consumers", "Consumers on a queue", func(q broker.QueueInfo) float64 { return float64(q.Consumers) }},
	} {
		m.header(g.name, g.help, "gauge")
		for _, q := range queues {
			m.sample(g.name, `vhost="`+escapeLabel(q.Vhost)+`",queue="`+escapeLabel(q.Name)+`"`, g.value(q))
		}
	}

	res := a.srv.Resources()
	if rss, ok := residentMemory(); ok {
		m.gauge("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", float64(rss))
	}
	m.gauge("rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", float64(res.MemoryLimit))
	m.gauge("rabbitmq_disk_space_available_bytes", "Disk space available in bytes", float64(res.DiskFree))
	m.gauge("rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes", float64(res.DiskFreeLimit))
	alarm := func(name string) float64 {
		for _, al := range a.srv.Alarms() {
			if al == name {
				return 1
			}
		}
		return 0
	}
	m.gauge("rabbitmq_alarms_memory_used_watermark", "is 1 if VM memory watermark alarm is in effect", alarm("memory"))
	m.gauge("rabbitmq_alarms_free_disk_space_watermark", "is 1 if free disk space watermark alarm is in effect", alarm("disk"))
	m.header("rabbitmq_identity_info", "RabbitMQ node & cluster identity info", "gauge")
	m.sample("rabbitmq_identity_info", `rabbitmq_node="`+escapeLabel(a.opts.Node)+`",rabbitmq_cluster="`+escapeLabel(a.clusterName())+`"`, 1)
}

// promWriter writes Prometheus' text exposition format.
type promWriter struct{ w io.Writer }

func (p promWriter) header(name, help, kind string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

func (p promWriter) sample(name, labels string, v float64) {
	if labels != "" {
		fmt.Fprintf(p.w, "%s{%s} %s\n", name, labels, strconv.FormatFloat(v, 'g', -1, 64))
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", name, strconv.FormatFloat(v, 'g', -1, 64))
}

func (p promWriter) gauge(name, help string, v float64) {
	p.header(name, help, "gauge")
	p.sample(name, "", v)
}

func (p promWriter) counter(name, help string, v float64) {
	p.header(name, help, "counter")
	p.sample(name, "", v)
}

// escapeLabel escapes a label value.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// residentMemory reads the process's RSS from /proc.
func residentMemory() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
