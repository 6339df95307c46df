package main

import (
	"fmt"
	"strings"
	"time"
)

// renderCluster formats the cluster scenario's section of the report, or
// returns "" when the run did not measure it.
func (r *report) renderCluster() string {
	x, ok := r.find(clusterID)
	if !ok || len(x.figures) == 0 {
		return ""
	}
	f := x.figures[0]
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Cluster: three nodes on loopback\n\n", clusterSection.start)
	fmt.Fprintf(&b, "Measured with `%s` on %s; on %s. Three `warren` processes of the binary the matrix measures, "+
		"each with a data dir of its own, clustered on loopback ports with `--cluster-listen` and `--cluster-join` "+
		"and the cluster's LAN defaults (memberlist's LAN timing; raft heartbeat and election timeouts of 1 s; "+
		"proposals without a majority fail after 4 s). They share this machine's cores with each other and with warren-perf.\n\n",
		r.command, machine(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "| part | figure | Warren |\n|---|---|---|\n")
	parts := []struct {
		name string
		cols []string
	}{
		{"(a) across nodes", []string{clSingleConsume, clSinglePublish, clConsume, clPublish, clRatio, clPublished, clConsumed,
			clSingleCPU, clCPUPerM, nodeCPU(0), nodeCPU(1), nodeCPU(2)}},
		{"failure detection", []string{clShownDown, clCancel, clChannelClosed}},
		{"leader failover", []string{clFailover, clRefused}},
		{fmt.Sprintf("idle, %s durable queues", formatCount(int(f[clQueues]))), []string{clRSSEmpty, clCPUEmpty, clRSS, clRSSMax, clCPU, clCPUOfCore}},
	}
	for _, p := range parts {
		for _, col := range p.cols {
			if col == clChannelClosed && f[col] == 0 {
				continue // only shown when it happened
			}
			v := format(f[col])
			if _, ok := f[col]; ok && (col == clPublished || col == clConsumed || col == clRefused) {
				v = formatCount(int(f[col])) // a count of 0 is a figure
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", p.name, col, v)
		}
	}
	fmt.Fprintf(&b, "\n%s\n\n%s\n\n%s\n\n%s\n", acrossNodesText(x, r.client), failureText(f), failoverText(f), idleText(f))
	if len(x.errs) > 0 && x.errs[0] != nil {
		fmt.Fprintf(&b, "\nThe run reported errors; the figures they concern are left out (—):\n\n```\n%s\n```\n", x.errs[0])
	}
	fmt.Fprintf(&b, "%s\n", clusterSection.end)
	return b.String()
}

// acrossNodesText describes part (a) and checks it: its goal, and whether
// node 3 received what node 2 published.
func acrossNodesText(x row, client string) string {
	f := x.figures[0]
	var b strings.Builder
	fmt.Fprintf(&b, "**(a) across nodes.** Scenario (a) (%s; warren-perf's %s client) for %s with its queue declared on node 1, "+
		"which is its home, the producer connected to node 2 and the consumer to node 3, after the idle part below "+
		"(its queues are still declared). Right before the cluster started, the same scenario ran on the matrix's single node: "+
		"the ratio is node 3's consume rate over that single node's. Goal (issue 12): at least half. ",
		scenarioATitle, clientShortName(client), x.s.cfg.Duration)
	switch ratio := f[clRatio]; {
	case ratio <= 0:
		b.WriteString("Not measured. ")
	case ratio >= 0.5:
		fmt.Fprintf(&b, "Met: %.2f. ", ratio)
	default:
		fmt.Fprintf(&b, "Missed: %.2f. ", ratio)
	}
	pub, cons := f[clPublished], f[clConsumed]
	_, ran := f[clPublished]
	switch {
	case !ran:
		b.WriteString("The part did not run (see the errors below).")
	case pub <= 0:
		b.WriteString("Node 2 published nothing.")
	case cons <= 0:
		fmt.Fprintf(&b, "Check: node 3 consumed none of the %s messages node 2 published, so this build does not forward "+
			"a queue between nodes (each node serves a queue of that name of its own); the rates above are node 2's "+
			"publishing into its own queue and nothing, not forwarding.", formatCount(int(pub)))
	default:
		fmt.Fprintf(&b, "Check: node 3 consumed %s of the %s messages node 2 published (%s; the rest were in flight "+
			"or still queued when the run ended).", formatCount(int(cons)), formatCount(int(pub)), percentOf(cons, pub))
	}
	if f[clCPUPerM] > 0 {
		b.WriteString(" CPU per million messages is the broker processes' user and system time over the run divided by the messages consumed " +
			"(on the single node as in (h)); each node's CPU is its time over the run's, in percent of one core.")
	}
	return b.String()
}

// failureText describes the failure-detection part and its outcome.
func failureText(f map[string]float64) string {
	var b strings.Builder
	b.WriteString("**Failure detection.** A durable queue is declared on a node that is not the raft leader (its home), " +
		"an amqp091-go consumer (which announces consumer_cancel_notify) consumes from it on the third node, and the home gets SIGKILL. " +
		"Seconds from the kill until the consumer's node lists the home as not running in `/api/nodes` (polled every 50 ms) " +
		"and until the consumer gets basic.cancel. ")
	if _, ran := f[clCancelWait]; !ran {
		b.WriteString("The part did not run (see the errors below).")
		return b.String()
	}
	if f[clForwardedBefore] > 0 {
		b.WriteString("Before the kill, a message published on the home reached the consumer on the other node. ")
	} else {
		b.WriteString("Before the kill, a message published on the home did not reach the consumer on the other node " +
			"within 2 s: the consumer is not on the home's queue. ")
	}
	wait := format(f[clCancelWait])
	switch {
	case f[clCancel] > 0:
		fmt.Fprintf(&b, "basic.cancel came after %s s.", format(f[clCancel]))
	case f[clChannelClosed] > 0:
		fmt.Fprintf(&b, "No basic.cancel: the consumer's channel closed after %s s instead.", format(f[clChannelClosed]))
	default:
		fmt.Fprintf(&b, "No cancel: none came within %s s.", wait)
	}
	if f[clShownDown] <= 0 {
		fmt.Fprintf(&b, " The home was not shown down within %s s.", wait)
	}
	return b.String()
}

// failoverText describes the leader-failover part and its outcome.
func failoverText(f map[string]float64) string {
	var b strings.Builder
	b.WriteString("**Leader failover.** On a new three-node cluster, a follower declares a durable queue, the raft leader gets SIGKILL, " +
		"and the follower declares durable queues one after another (each on a new connection, 50 ms apart) until one succeeds: " +
		"seconds from the kill to that declare-ok. ")
	if _, ran := f[clFailoverWait]; !ran {
		b.WriteString("The part did not run (see the errors below).")
		return b.String()
	}
	if n := f[clRefused]; n > 0 {
		fmt.Fprintf(&b, "%s declares were refused before it", formatCount(int(n)))
		if code := f[clRefusedCode]; code > 0 {
			fmt.Fprintf(&b, " (the first with reply code %.0f)", code)
		}
		b.WriteString(". ")
	}
	switch {
	case f[clFailover] <= 0:
		fmt.Fprintf(&b, "No declare succeeded within %s s.", format(f[clFailoverWait]))
	case f[clRefused] == 0:
		b.WriteString("None was refused: the first declare after the kill waited for the new leader and succeeded.")
	}
	return strings.TrimSpace(b.String())
}

// idleText describes the idle part.
func idleText(f map[string]float64) string {
	ran := ""
	if _, ok := f[clRSS]; !ok {
		ran = " The part did not run to its end (see the errors below)."
	}
	return fmt.Sprintf("**Idle cluster.** Right after the cluster formed and its nodes rested, the RSS (VmRSS from /proc) of the three processes together "+
		"and their CPU (utime + stime from /proc) over %s s; "+
		"then %s durable queues are declared, a third through each node, and once every node has them and the nodes rested again, "+
		"their CPU over %s s with no client traffic and their RSS at its end.%s",
		format(f[clIdleSecs]/3), formatCount(int(f[clQueues])), format(f[clIdleSecs]), ran)
}
