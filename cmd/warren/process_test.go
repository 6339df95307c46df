package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// warrenBin is the broker binary built once for this package's tests.
var warrenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warren-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	warrenBin = filepath.Join(dir, "warren")
	build := exec.Command("go", "build", "-race", "-o", warrenBin, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build warren:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a warren binary running for a test.
type process struct {
	t       *testing.T
	cmd     *exec.Cmd
	Addr    string
	DataDir string
	// MgmtAddr is the management API's address, when started with it.
	MgmtAddr string
	exited   chan error
	logMu    sync.Mutex
	logs     *strings.Builder // under logMu
}

// logText returns what the process logged so far.
func (p *process) logText() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.logs.String()
}

// freePort returns a loopback port that was free a moment ago. Ports are
// drawn from 10000-19999, below the kernel's ephemeral range and apart
// from the cluster harness's (cluster/clustertest), so that outgoing
// connections and other tests' listeners on port 0 do not take them
// before the broker binds them.
func freePort(t *testing.T) string {
	t.Helper()
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+rand.IntN(10000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// startProcess runs the broker binary on a fresh port with dataDir and
// waits until it accepts connections.
func startProcess(t *testing.T, dataDir string, extraArgs ...string) *process {
	t.Helper()
	return startBinary(t, warrenBin, dataDir, extraArgs...)
}

// startWithManagement is startProcess with the management API listening
// on a fresh loopback port too, at p.MgmtAddr.
func startWithManagement(t *testing.T, dataDir string, extraArgs ...string) *process {
	t.Helper()
	mgmt := freePort(t)
	p := startProcess(t, dataDir, append([]string{"--mgmt-listen", mgmt}, extraArgs...)...)
	p.MgmtAddr = mgmt
	return p
}

// startBinary is startProcess with another build of the broker.
func startBinary(t *testing.T, bin, dataDir string, extraArgs ...string) *process {
	t.Helper()
	addr := freePort(t)
	args := append([]string{"--amqp-listen", addr, "--mgmt-listen", "", "--data-dir", dataDir}, extraArgs...)
	return startCommand(t, exec.Command(bin, args...), addr, dataDir)
}

// startCommand starts cmd, a broker listening on addr with dataDir, and
// waits until it accepts connections.
func startCommand(t *testing.T, cmd *exec.Cmd, addr, dataDir string) *process {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, Addr: addr, DataDir: dataDir, exited: make(chan error, 1), logs: &strings.Builder{}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start warren: %v", err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			p.logMu.Lock()
			p.logs.WriteString(line + "\n")
			p.logMu.Unlock()
			if !once && strings.Contains(line, "warren started") {
				once = true
				close(started)
			}
		}
		p.exited <- cmd.Wait()
	}()
	select {
	case <-started:
	case err := <-p.exited:
		t.Fatalf("warren exited at start: %v\n%s", err, p.logText())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("warren did not start within 30 s")
	}
	t.Cleanup(func() { p.kill() })
	return p
}

// URL is the guest AMQP URL of the process.
func (p *process) URL() string { return fmt.Sprintf("amqp://guest:guest@%s/", p.Addr) }

// kill stops the process with SIGKILL and waits for it.
func (p *process) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.exited <- nil // later calls return at once
}

// stop sends SIGTERM and returns the exit error.
func (p *process) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		return fmt.Errorf("warren did not stop within 30 s")
	}
}

// runBinary runs the broker binary to completion (for start-up failures)
// and returns its combined output.
func runBinary(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, warrenBin, args...).CombinedOutput()
	return string(out), err
}

// dialChannel connects to url and opens a channel, failing the test if it
// cannot.
func dialChannel(t *testing.T, url string) (*rmq.Connection, *rmq.Channel) {
	t.Helper()
	c, err := rmq.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Channel()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c, ch
}
