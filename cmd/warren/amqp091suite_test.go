package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"
)

// knownSuiteFailures lists the amqp091-go integration tests that cannot pass
// against Warren, with the reason (also listed in the README). They are not
// run, so that their timeouts do not slow the suite down.
var knownSuiteFailures = map[string]string{}

// excludedSuitePrefix names tests left out as a group, with the reason.
var excludedSuitePrefix = map[string]string{}

// The suite's recovery tests (TestConnectionRecovery*) find and
// force-close connections through the management API, at an address
// written into the suite: localhost:15672. suiteMgmtPatch makes it the
// address in the environment variable suiteMgmtEnv, so that every run
// talks to the management API of the node it tests, whatever holds port
// 15672 (a RabbitMQ, another run of this test).
const (
	suiteMgmtEnv = "WARREN_SUITE_MGMT"
	// suiteMgmtFile is the suite's file of management calls; every call
	// builds its request in one place, the line suiteMgmtCall.
	suiteMgmtFile = "internal/utils/http.go"
	suiteMgmtCall = "http.NewRequest(method, url, nil)"
)

// suiteMgmtPatch is the file added to the suite's utils package: the
// address rewrite that suiteMgmtCall goes through once patched.
const suiteMgmtPatch = `//go:build integration

package utils

import (
	"os"
	"strings"
)

// warrenMgmtURL points url, written for localhost:15672, at the
// management API named by $` + suiteMgmtEnv + ` (added by Warren's test).
func warrenMgmtURL(url string) string {
	if addr := os.Getenv("` + suiteMgmtEnv + `"); addr != "" {
		return strings.Replace(url, "localhost:15672", addr, 1)
	}
	return url
}
`

// TestAmqp091GoIntegrationSuite runs the integration_test.go and
// recovery_test.go of the amqp091-go version in go.mod against Warren,
// twice at once: against a standalone node, and against one node of three
// warren processes clustered on loopback. Each run's management calls go
// to the node it tests. Set WARREN_SKIP_SUITE=1 to skip it.
func TestAmqp091GoIntegrationSuite(t *testing.T) {
	if os.Getenv("WARREN_SKIP_SUITE") != "" {
		t.Skip("WARREN_SKIP_SUITE is set")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	s := buildSuite(t)
	// Both runs spend most of their time waiting (the recovery tests
	// wait seconds for reconnections), so they run side by side.
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		p := startWithManagement(t, t.TempDir())
		s.run(t, p)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		nodes := startCluster(t, 3, 2) // the suite's node joined the cluster last
		s.run(t, nodes[2])
	})
	for name, why := range knownSuiteFailures {
		t.Logf("not run, known failure %s: %s", name, why)
	}
	for p, why := range excludedSuitePrefix {
		t.Logf("not run, %s*: %s", p, why)
	}
}

// suite is the amqp091-go test binary, built once for every run.
type suite struct {
	dir, bin string
	tests    string // the -test.run pattern
}

// buildSuite copies the amqp091-go module, patches its management
// address (suiteMgmtPatch) and builds its integration tests.
func buildSuite(t *testing.T) suite {
	t.Helper()
	src := amqp091ModuleDir(t)
	tmp := t.TempDir()
	s := suite{dir: filepath.Join(tmp, "amqp091-go"), bin: filepath.Join(tmp, "amqp091-go.test")}
	if out, err := exec.Command("cp", "-r", src, s.dir).CombinedOutput(); err != nil {
		t.Fatalf("copy module: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", s.dir).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	calls := filepath.Join(s.dir, suiteMgmtFile)
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatalf("read the suite's management calls: %v", err)
	}
	if n := bytes.Count(b, []byte(suiteMgmtCall)); n != 1 {
		t.Fatalf("%s has %d of %q, want 1: the suite changed; see suiteMgmtPatch", suiteMgmtFile, n, suiteMgmtCall)
	}
	b = bytes.Replace(b, []byte(suiteMgmtCall), []byte("http.NewRequest(method, warrenMgmtURL(url), nil)"), 1)
	if err := os.WriteFile(calls, b, 0o644); err != nil {
		t.Fatalf("patch the suite: %v", err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(calls), "warren_mgmt.go"), []byte(suiteMgmtPatch), 0o644); err != nil {
		t.Fatalf("patch the suite: %v", err)
	}
	build := exec.Command("go", "test", "-c", "-tags", "integration", "-o", s.bin, ".")
	build.Dir = s.dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the suite: %v\n%s", err, out)
	}
	s.tests = suiteTests(t, s.dir)
	return s
}

// run runs the suite against p's AMQP listener and management API and
// fails t with the output of each suite test that failed.
func (s suite) run(t *testing.T, p *process) {
	t.Helper()
	if p.MgmtAddr == "" {
		t.Fatal("the suite's node has no management listener")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "tool", "test2json", "-t", s.bin,
		"-test.v=test2json", "-test.count=1", "-test.timeout=5m", "-test.run", s.tests)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "AMQP_URL="+p.URL(), suiteMgmtEnv+"="+p.MgmtAddr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, _ := cmd.Output()
	res := parseTestJSON(out)
	if len(res.passed)+len(res.failed) == 0 {
		t.Fatalf("the suite ran no tests:\n%s\n%s", stderr.String(), tail(out, 4000))
	}
	t.Logf("amqp091-go integration suite: %d passed, %d failed, %d skipped in %s",
		len(res.passed), len(res.failed), len(res.skipped), time.Since(start).Round(time.Second))
	for _, name := range res.failed {
		if _, known := knownSuiteFailures[name]; !known {
			t.Errorf("suite test %s failed:\n%s", name, res.output[name])
		}
	}
}

// suiteTests returns a -run pattern for the tests of the suite's
// integration_test.go and recovery_test.go (not its unit tests).
func suiteTests(t *testing.T, dir string) string {
	var names []string
	for _, f := range []string{"integration_test.go", "recovery_test.go"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("read suite: %v", err)
		}
		for _, m := range testFuncRE.FindAllSubmatch(b, -1) {
			name := string(m[1])
			if name == "TestMain" || knownSuiteFailures[name] != "" || excluded(name) {
				continue
			}
			names = append(names, name)
		}
	}
	return "^(" + strings.Join(names, "|") + ")$"
}

func excluded(name string) bool {
	for p := range excludedSuitePrefix {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

var testFuncRE = regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\)`)

// amqp091ModuleDir finds the amqp091-go source in the module cache,
// downloading it if needed.
func amqp091ModuleDir(t *testing.T) string {
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/rabbitmq/amqp091-go" {
				version = d.Version
			}
		}
	}
	if version == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/rabbitmq/amqp091-go").Output()
		if err != nil {
			t.Fatalf("find amqp091-go version: %v", err)
		}
		version = strings.TrimSpace(string(out))
	}
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/rabbitmq/amqp091-go@"+version).Output()
	if err != nil {
		t.Fatalf("download amqp091-go: %v", err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("module dir of amqp091-go: %v %s", err, out)
	}
	return info.Dir
}

type suiteResult struct {
	passed, failed, skipped []string
	output                  map[string]string
}

// parseTestJSON reads `go test -json` output.
func parseTestJSON(out []byte) suiteResult {
	r := suiteResult{output: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Action, Test, Output string
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" || strings.Contains(ev.Test, "/") {
			continue
		}
		switch ev.Action {
		case "pass":
			r.passed = append(r.passed, ev.Test)
		case "fail":
			r.failed = append(r.failed, ev.Test)
		case "skip":
			r.skipped = append(r.skipped, ev.Test)
		case "output":
			if len(r.output[ev.Test]) < 8000 {
				r.output[ev.Test] += ev.Output
			}
		}
	}
	sort.Strings(r.failed)
	return r
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return fmt.Sprintf("...%s", b)
}
