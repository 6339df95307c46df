package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// profile is a pprof summary of Warren in the scenario of a missed goal.
type profile struct {
	goal string // the goal's statement
	kind string // what was profiled, and how long
	top  string // `go tool pprof -top` output, or why there is none
}

// profileMissed reruns the scenario of every missed goal on Warren while
// its pprof endpoint records: a CPU profile for the throughput, latency and
// CPU goals, a heap profile with the idle connections open for (g).
func profileMissed(warren *broker, vs []verdict, rows []row) []profile {
	if warren.pprof == "" {
		return nil
	}
	byID := map[string]scenario{}
	for _, r := range rows {
		byID[r.s.id] = r.s
	}
	var out []profile
	for _, v := range vs {
		s, ok := byID[v.scenario]
		if v.state != goalMissed || !ok {
			continue
		}
		fmt.Fprintf(os.Stderr, "profiling Warren in (%s) for the missed goal...\n", s.id)
		var p profile
		var err error
		if s.id == "g" {
			p, err = heapProfile(warren)
		} else {
			p, err = cpuProfile(warren, s)
		}
		if err != nil {
			p.top = "no profile: " + err.Error()
		}
		p.goal = v.target
		out = append(out, p)
	}
	return out
}

// cpuProfile runs s on Warren and profiles its CPU for all but the first
// second of the run.
func cpuProfile(warren *broker, s scenario) (profile, error) {
	secs := max(int(s.cfg.Duration/time.Second)-1, 1)
	p := profile{kind: fmt.Sprintf("CPU profile of Warren over %d s of the scenario", secs)}
	got := make(chan error, 1)
	var file string
	go func() {
		time.Sleep(time.Second) // skip the warm-up second, as the rates do
		var err error
		file, err = fetchProfile(warren.pprof, fmt.Sprintf("profile?seconds=%d", secs))
		got <- err
	}()
	if _, err := throughput(warren, s.cfg); err != nil {
		<-got
		return p, fmt.Errorf("rerun (%s): %w", s.id, err)
	}
	if err := <-got; err != nil {
		return p, err
	}
	defer os.Remove(file)
	top, err := pprofTop(file)
	p.top = top
	return p, err
}

// heapProfile opens the idle connections of (g) on Warren and takes a heap
// profile (in-use bytes) while they are open.
func heapProfile(warren *broker) (profile, error) {
	p := profile{kind: fmt.Sprintf("heap profile of Warren (in-use bytes) with %s idle connections", formatCount(idleConns))}
	conns, err := openIdle(warren.uri, idleConns)
	defer closeAll(conns)
	if err != nil {
		return p, err
	}
	file, err := fetchProfile(warren.pprof, "heap?gc=1")
	if err != nil {
		return p, err
	}
	defer os.Remove(file)
	top, err := pprofTop(file, "-sample_index=inuse_space")
	p.top = top
	return p, err
}

// fetchProfile saves /debug/pprof/<path> of addr to a temporary file.
func fetchProfile(addr, path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+path, nil)
	if err != nil {
		return "", fmt.Errorf("pprof request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch pprof %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch pprof %s: %s", path, resp.Status)
	}
	f, err := os.CreateTemp("", "warren-perf-*.pprof")
	if err != nil {
		return "", fmt.Errorf("profile file: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("save pprof %s: %w", path, err)
	}
	return f.Name(), nil
}

// pprofTop summarizes a profile with `go tool pprof -top`.
func pprofTop(file string, args ...string) (string, error) {
	args = append([]string{"tool", "pprof", "-top", "-nodecount=25"}, args...)
	out, err := exec.Command("go", append(args, file)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// renderProfiles formats the profiles as a Markdown section.
func renderProfiles(ps []profile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Profiles of the missed goals\n\nEach missed goal's scenario was run once more on Warren alone, with its `--pprof` endpoint recording; the top functions show where the time or memory goes.\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "\n### %s\n\n%s:\n\n```\n%s\n```\n", p.goal, p.kind, p.top)
	}
	return b.String()
}
