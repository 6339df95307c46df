package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// tenthCount is how many of n messages the k-th tenth (0-based) holds, as
// tenths.update divides them.
func tenthCount(n, k int) int { return (k+1)*n/10 - k*n/10 }

// decileRates turns the moments each tenth of n was done into the rate
// of each tenth in messages per second.
func decileRates(marks []time.Duration, n int) []float64 {
	out := make([]float64, len(marks))
	var prev time.Duration
	for k, m := range marks {
		if d := m - prev; d > 0 {
			out[k] = float64(tenthCount(n, k)) / d.Seconds()
		}
		prev = m
	}
	return out
}

// decilePeaks returns, for each tenth, the largest VmRSS (KiB) sampled
// while it ran (0 when no sample fell in it).
func decilePeaks(marks []time.Duration, samples []memSample) []int {
	out := make([]int, len(marks))
	var prev time.Duration
	for k, m := range marks {
		for _, s := range samples {
			if s.at > prev && s.at <= m && s.vmRSS > out[k] {
				out[k] = s.vmRSS
			}
		}
		prev = m
	}
	return out
}

// mib formats a size in bytes: in MiB, or in KiB below 10 MiB.
func mib(bytes int64) string {
	if bytes < 10<<20 {
		return fmt.Sprintf("%.0f KiB", float64(bytes)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

func kib(k int) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// rate is count per elapsed second.
func perSecond(count int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(count) / d.Seconds()
}

// render formats the result as the backlog section of docs/BENCHMARKS.md.
func (r *backlogResult) render() string {
	c := r.cfg
	var b strings.Builder
	n := formatCount(c.messages)
	fmt.Fprintf(&b, "%s\n## Backlog beyond memory: %s persistent messages of %s B in one queue\n\n", backlogSection.start, n, formatCount(c.size))
	fmt.Fprintf(&b, "Measured with `%s` on %s, %d cores, %s RAM, %s, on %s. ",
		c.command, cpuModel(), runtime.NumCPU(), memTotal(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "warren-perf starts `%s` itself on a fresh data dir (loopback, management off) and shares the cores with it. "+
		"It publishes with %d producers (one connection each, confirm window %d) into one durable queue with no consumer, "+
		"stops the broker with SIGTERM and starts it again on the same data dir, drains the queue with one consumer "+
		"(prefetch %d, multi-ack %d), and then measures the data dir every %s for up to %s. ",
		c.bin, c.producers, c.confirm, c.prefetch, c.multiAck, c.reclaimPoll, c.reclaimWait)
	fmt.Fprintf(&b, "RSS is the broker's VmRSS from /proc/<pid>/status, read every second; RssAnon is the heap and stacks, "+
		"RssFile the pages of mapped files (Badger maps its tables and value log; the kernel can drop those pages). "+
		"Disk is the space the data dir's files take (allocated blocks, as `du` counts: Badger's files are sparse).\n\n")

	pubRate := perSecond(c.messages, r.publish.elapsed)
	drainRate := perSecond(r.received, r.drain.elapsed)
	pubDec := decileRates(r.publish.marks, c.messages)
	drainDec := decileRates(r.drain.marks, c.messages)
	goalRSS := 256 * 1024
	fmt.Fprintf(&b, "| figure | measured | goal |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| peak RSS while publishing | %s (RssAnon %s, RssFile %s) | under 256 MiB: %s |\n",
		kib(r.publish.peak.vmRSS), kib(r.publish.peak.rssAnon), kib(r.publish.peak.rssFile), metOrMissed(r.publish.peak.vmRSS < goalRSS))
	fmt.Fprintf(&b, "| publish rate, all %s (with confirms) | %s msg/s in %s | |\n", n, format(pubRate), r.publish.elapsed.Round(100*time.Millisecond))
	if len(pubDec) == 10 && pubDec[0] > 0 {
		lo, hi := minMax(pubDec)
		fmt.Fprintf(&b, "| publish rate, last tenth / first tenth | %.2f (slowest tenth %s, fastest %s msg/s) | no slowdown as the backlog grows: %s |\n",
			pubDec[9]/pubDec[0], format(lo), format(hi), metOrMissed(pubDec[9] >= 0.8*pubDec[0]))
	}
	fmt.Fprintf(&b, "| stop (SIGTERM to exit) with the backlog | %s | |\n", r.stopTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "| restart to the first AMQP connection | %s | within 10 s (issue: for 1,000,000 messages; here %s): %s |\n",
		r.acceptTime.Round(time.Millisecond), n, metOrMissed(r.acceptTime < 10*time.Second))
	fmt.Fprintf(&b, "| restart to a passive queue.declare reporting %s | %s | the right count: %s |\n",
		n, r.countTime.Round(time.Millisecond), metOrMissed(r.countTime > 0))
	fmt.Fprintf(&b, "| RSS once the count is right after the restart | %s (RssAnon %s) | |\n", kib(r.restartRSS.vmRSS), kib(r.restartRSS.rssAnon))
	fmt.Fprintf(&b, "| drain rate, one consumer | %s msg/s in %s (%s received, %d duplicates, %d redelivered) | exactly %s: %s |\n",
		format(drainRate), r.drain.elapsed.Round(100*time.Millisecond), formatCount(r.received), r.duplicates, r.redelivered, n,
		metOrMissed(r.received == c.messages && r.duplicates == 0))
	if len(drainDec) == 10 && drainDec[0] > 0 {
		lo, hi := minMax(drainDec)
		fmt.Fprintf(&b, "| drain rate, slowest / fastest tenth | %s / %s msg/s | steady |\n", format(lo), format(hi))
	}
	fmt.Fprintf(&b, "| peak RSS while draining | %s (RssAnon %s, RssFile %s) | under 256 MiB: %s |\n",
		kib(r.drain.peak.vmRSS), kib(r.drain.peak.rssAnon), kib(r.drain.peak.rssFile), metOrMissed(r.drain.peak.vmRSS < goalRSS))
	fmt.Fprintf(&b, "| disk, empty broker | %s | |\n", mib(r.diskEmpty))
	fmt.Fprintf(&b, "| disk before the backlog (queue declared) | %s | |\n", mib(r.diskBefore))
	fmt.Fprintf(&b, "| disk with the backlog | %s | |\n", mib(r.diskFull))
	fmt.Fprintf(&b, "| disk right after the drain | %s | |\n", mib(r.diskDrained))
	goal := fmt.Sprintf("within %.0f%% (at least 64 KiB) of the size before: %s, within a few minutes", 100*(c.reclaimRatio-1),
		mib(reclaimGoal(r.diskBefore, c.reclaimRatio)))
	last := r.reclaim[len(r.reclaim)-1]
	if r.reclaimed {
		fmt.Fprintf(&b, "| disk reclaimed | %s, %s after the drain | %s: met |\n", mib(last.size), last.at.Round(time.Second), goal)
	} else {
		fmt.Fprintf(&b, "| disk reclaimed | not within %s: %s at the end | %s: missed |\n", c.reclaimWait, mib(last.size), goal)
	}

	fmt.Fprintf(&b, "\nPer tenth of the messages (peak RSS: the largest one-second sample while that tenth ran):\n\n")
	fmt.Fprintf(&b, "| tenth | publish msg/s | peak RSS publishing | drain msg/s | peak RSS draining |\n|---|---|---|---|---|\n")
	pubPeaks := decilePeaks(r.publish.marks, r.publish.rss)
	drainPeaks := decilePeaks(r.drain.marks, r.drain.rss)
	for k := 0; k < 10; k++ {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", k+1, at(pubDec, k), atKiB(pubPeaks, k), at(drainDec, k), atKiB(drainPeaks, k))
	}
	fmt.Fprintf(&b, "\nData dir after the drain:")
	for _, s := range r.reclaim {
		fmt.Fprintf(&b, " %s: %s;", s.at.Round(time.Second), mib(s.size))
	}
	fmt.Fprintf(&b, "\n%s\n", backlogSection.end)
	return b.String()
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func at(v []float64, k int) string {
	if k >= len(v) {
		return "—"
	}
	return format(v[k])
}

func atKiB(v []int, k int) string {
	if k >= len(v) || v[k] == 0 {
		return "—"
	}
	return kib(v[k])
}
