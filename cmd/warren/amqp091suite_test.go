package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
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

// recoveryTests are the suite's tests that find and force-close
// connections through the management API on localhost:15672 as guest;
// they run when that port is free for Warren's management listener.
const recoveryTests = "TestConnectionRecovery"

// TestAmqp091GoIntegrationSuite runs the integration_test.go of the
// amqp091-go version in go.mod against a Warren started from the binary.
// Set WARREN_SKIP_SUITE=1 to skip it.
func TestAmqp091GoIntegrationSuite(t *testing.T) {
	if os.Getenv("WARREN_SKIP_SUITE") != "" {
		t.Skip("WARREN_SKIP_SUITE is set")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	src := amqp091ModuleDir(t)
	work := filepath.Join(t.TempDir(), "amqp091-go")
	if out, err := exec.Command("cp", "-r", src, work).CombinedOutput(); err != nil {
		t.Fatalf("copy module: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", work).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v\n%s", err, out)
	}
	var extra []string
	if ln, err := net.Listen("tcp", "127.0.0.1:15672"); err == nil {
		ln.Close()
		extra = []string{"--mgmt-listen", "127.0.0.1:15672"}
	} else {
		excludedSuitePrefix[recoveryTests] = "port 15672 is in use (is RabbitMQ running?), so Warren's management API cannot serve it"
	}
	p := startProcess(t, t.TempDir(), extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-tags", "integration", "-count=1", "-json",
		"-timeout", "5m", "-run", suiteTests(t, work), ".")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "AMQP_URL="+p.URL(), "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	res := parseTestJSON(out)
	if len(res.passed)+len(res.failed) == 0 {
		t.Fatalf("the suite ran no tests:\n%s\n%s", stderr.String(), tail(out, 4000))
	}
	t.Logf("amqp091-go integration suite: %d passed, %d failed, %d skipped",
		len(res.passed), len(res.failed), len(res.skipped))
	var unexpected []string
	for _, name := range res.failed {
		if _, known := knownSuiteFailures[name]; !known {
			unexpected = append(unexpected, name)
		}
	}
	for _, name := range unexpected {
		t.Errorf("suite test %s failed:\n%s", name, res.output[name])
	}
	for name, why := range knownSuiteFailures {
		t.Logf("not run, known failure %s: %s", name, why)
	}
	for p, why := range excludedSuitePrefix {
		t.Logf("not run, %s*: %s", p, why)
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
