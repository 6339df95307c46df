package main

import (
	"fmt"
	"strings"
)

// A goal is one of issue 6's targets, checked against a scenario's figures
// on Warren (w) and RabbitMQ (r).
type goal struct {
	scenario string // the scenario id whose figures it reads
	target   string // the goal as the issue states it
	// check returns the measured figures as text and whether the goal is
	// met; ok is false when a figure it needs is missing.
	check func(w, r map[string]float64) (measured string, met, ok bool)
}

// verdict is a goal's outcome in one run.
type verdict struct {
	goal
	measured string
	state    string // "met", "missed" or "not measured"
}

// The verdict states.
const (
	goalMet         = "met"
	goalMissed      = "missed"
	goalNotMeasured = "not measured"
)

// ratioAtLeast is the goal "Warren's col is at least k times RabbitMQ's".
func ratioAtLeast(col string, k float64) func(w, r map[string]float64) (string, bool, bool) {
	return func(w, r map[string]float64) (string, bool, bool) {
		wv, rv := w[col], r[col]
		if wv <= 0 || rv <= 0 {
			return "", false, false
		}
		ratio := wv / rv
		return fmt.Sprintf("%s vs %s %s: %.2fx", format(wv), format(rv), col, ratio), ratio >= k, true
	}
}

// atMostFraction is the goal "Warren's col is at most k times RabbitMQ's"
// (lower is better).
func atMostFraction(col string, k float64) func(w, r map[string]float64) (string, bool, bool) {
	return func(w, r map[string]float64) (string, bool, bool) {
		wv, rv := w[col], r[col]
		if wv <= 0 || rv <= 0 {
			return "", false, false
		}
		return fmt.Sprintf("%s vs %s %s: %.2fx", format(wv), format(rv), col, wv/rv), wv <= k*rv, true
	}
}

// idleMemory is goal (g): per connection at most a quarter of RabbitMQ's,
// and the 1,000 connections under 50 MiB of RSS in all.
func idleMemory(w, r map[string]float64) (string, bool, bool) {
	wk, rk, rss := w["KiB per conn"], r["KiB per conn"], w["RSS MiB"]
	if wk <= 0 || rk <= 0 || rss <= 0 {
		return "", false, false
	}
	return fmt.Sprintf("%s vs %s KiB per conn: %.2fx; %s MiB RSS", format(wk), format(rk), wk/rk, format(rss)),
		wk <= rk/4 && rss < 50, true
}

// goals are issue 6's targets, in the order it lists them.
var goals = []goal{
	{"a", "(a) consume rate at least 2x RabbitMQ's", ratioAtLeast("consume msg/s", 2)},
	{"b", "(b) consume rate at least 2x RabbitMQ's", ratioAtLeast("consume msg/s", 2)},
	{"c", "(c) consume rate at least 1.5x RabbitMQ's (confirms after fsync: checked by the durability tests, not here)", ratioAtLeast("consume msg/s", 1.5)},
	{"d", "(d) consume rate at least 2x RabbitMQ's", ratioAtLeast("consume msg/s", 2)},
	{"e", "(e) consume rate at least 2x RabbitMQ's", ratioAtLeast("consume msg/s", 2)},
	{"f", "(f) p99 latency no higher than RabbitMQ's", atMostFraction("p99 ms", 1)},
	{"g", "(g) memory per idle connection at most 1/4 of RabbitMQ's, and 1,000 idle connections under 50 MiB RSS", idleMemory},
	{"h", "(h) broker CPU per message at most 1/2 of RabbitMQ's", atMostFraction("CPU s per 1M msgs", 0.5)},
}

// evaluateGoals checks every goal against the rows; figures[0] of a row is
// Warren's and figures[1] RabbitMQ's.
func evaluateGoals(rows []row) []verdict {
	byID := map[string]row{}
	for _, r := range rows {
		byID[r.s.id] = r
	}
	var out []verdict
	for _, g := range goals {
		v := verdict{goal: g, state: goalNotMeasured}
		if r, ok := byID[g.scenario]; ok && len(r.figures) > 1 {
			measured, met, ok := g.check(r.figures[0], r.figures[1])
			if ok {
				v.measured, v.state = measured, goalMissed
				if met {
					v.state = goalMet
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// renderGoals formats the verdicts as a Markdown section.
func renderGoals(vs []verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Goals\n\nIssue 6's goals, checked against the figures above (Warren vs RabbitMQ from this run):\n\n")
	fmt.Fprintf(&b, "| goal | measured | verdict |\n|---|---|---|\n")
	met := 0
	for _, v := range vs {
		measured := v.measured
		if measured == "" {
			measured = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", v.target, measured, v.state)
		if v.state == goalMet {
			met++
		}
	}
	fmt.Fprintf(&b, "\n%d of %d goals met.\n", met, len(vs))
	return b.String()
}
