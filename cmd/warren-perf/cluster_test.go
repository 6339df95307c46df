package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildWarren builds cmd/warren into a temporary dir for a test that runs
// it as processes.
func buildWarren(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "warren")
	out, err := exec.Command("go", "build", "-o", bin, "../warren").CombinedOutput()
	if err != nil {
		t.Fatalf("build warren: %v\n%s", err, out)
	}
	return bin
}

// TestClusterScenarioReportsItsFigures runs the cluster scenario small
// (100 queues, 2 s runs, short waits) against processes of this build and
// checks only that it reports its figures: how fast is not its business,
// and forwarding or a basic.cancel depend on what the build does.
func TestClusterScenarioReportsItsFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	b, err := startWarren(buildWarren(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.stop()
	var s scenario
	for _, x := range scenarios(2 * time.Second) {
		if x.id == clusterID {
			s = x
		}
	}
	if s.id == "" {
		t.Fatal("the matrix has no cluster scenario")
	}
	sz := clusterSizes{queues: 100, settle: 200 * time.Millisecond, idle: 2 * time.Second,
		cancelWait: 10 * time.Second, failoverWait: 30 * time.Second}
	fig, err := measureCluster(b, s.cfg, sz)
	t.Log(fig)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{clSingleConsume, clPublish, clRSSEmpty, clCPUEmpty, clRSS, clRSSMax, clCPU, clFailover} {
		if fig[col] <= 0 {
			t.Errorf("%s is %v", col, fig[col])
		}
	}
	for _, col := range []string{clConsumed, clForwardedBefore, clRefused} {
		if _, ok := fig[col]; !ok {
			t.Errorf("%s is not reported", col)
		}
	}
	r := report{brokers: []*broker{b}, rows: []row{{s: s, figures: []map[string]float64{fig}, errs: []error{nil}}},
		command: "warren-perf matrix --scenarios cluster"}
	if got := r.render(); got != "" {
		t.Errorf("the cluster scenario alone rendered a matrix:\n%s", got)
	}
	text := r.renderCluster()
	t.Log(text)
	for _, want := range []string{clusterSection.start, "## Cluster: three nodes on loopback", "| idle, 100 durable queues | " + clRSS + " |",
		"**(a) across nodes.**", "**Failure detection.**", "**Leader failover.**", "**Idle cluster.**", clusterSection.end} {
		if !strings.Contains(text, want) {
			t.Errorf("the cluster section lacks %q", want)
		}
	}
	if strings.Contains(text, "reported errors") {
		t.Error("the cluster section reports errors of a run that had none")
	}
}
