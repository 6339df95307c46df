package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// execNofileEnv, when set to "soft:hard" in the environment of this test
// binary, makes it set its open files limit and exec the program named by
// execProgramEnv with its arguments: a child process with a lowered fd
// limit, without depending on prlimit(1).
const (
	execNofileEnv  = "WARREN_TEST_EXEC_NOFILE"
	execProgramEnv = "WARREN_TEST_EXEC_PROGRAM"
)

func init() {
	spec, prog := os.Getenv(execNofileEnv), os.Getenv(execProgramEnv)
	if spec == "" || prog == "" {
		return
	}
	soft, hard, ok := strings.Cut(spec, ":")
	var lim syscall.Rlimit
	var err error
	if lim.Cur, err = strconv.ParseUint(soft, 10, 64); err == nil && ok {
		lim.Max, err = strconv.ParseUint(hard, 10, 64)
	}
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if err == nil {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, execNofileEnv+"=") && !strings.HasPrefix(kv, execProgramEnv+"=") {
				env = append(env, kv)
			}
		}
		err = syscall.Exec(prog, append([]string{prog}, os.Args[1:]...), env)
	}
	fmt.Fprintf(os.Stderr, "exec %s with open files limit %s: %v\n", prog, spec, err)
	os.Exit(2)
}

// startWithFDLimit starts the broker with an open files limit of soft
// and hard descriptors.
func startWithFDLimit(t *testing.T, soft, hard int, extraArgs ...string) *process {
	t.Helper()
	addr := freePort(t)
	dir := t.TempDir()
	args := append([]string{"--amqp-listen", addr, "--mgmt-listen", "", "--data-dir", dir}, extraArgs...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", execNofileEnv, soft, hard), execProgramEnv+"="+warrenBin)
	return startCommand(t, cmd, addr, dir)
}

// openFilesLimit reads a process's soft limit on open files.
func openFilesLimit(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "Max open files") && len(f) >= 4 {
			n, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("limits line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits", pid)
	return 0
}

// TestFloodOfConnectionsUnderALowFDLimit opens more idle TCP connections
// than the broker has descriptors for, with no connection limit: accept
// fails with EMFILE, the broker logs it once and keeps going, and once
// the flood goes a client connects again. The soft limit starts below
// the hard one and is raised to it at start.
func TestFloodOfConnectionsUnderALowFDLimit(t *testing.T) {
	const soft, hard, flood = 96, 160, 240
	p := startWithFDLimit(t, soft, hard, "--max-connections", "-1")
	if got := openFilesLimit(t, p.cmd.Process.Pid); got != hard {
		t.Errorf("open files limit = %d, want the hard limit %d", got, hard)
	}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logText(), "accepting connections failed") {
		if time.Now().After(deadline) {
			t.Fatalf("accept never failed with %d connections under a limit of %d:\n%s", flood, hard, p.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-p.exited:
		t.Fatalf("the broker exited: %v\n%s", err, p.logText())
	default:
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	c, err := rmq.DialConfig(p.URL(), rmq.Config{Dial: rmq.DefaultDial(15 * time.Second)})
	if err != nil {
		t.Fatalf("connect after the flood: %v\n%s", err, p.logText())
	}
	c.Close()
	if n := strings.Count(p.logText(), "accepting connections failed"); n != 1 {
		t.Errorf("the burst of failed accepts was logged %d times, want once", n)
	}
}

// TestAutomaticConnectionLimitRefusesBeforeTheFDLimit: with the default
// --max-connections the broker refuses connections past its open files
// limit less a reserve, so accept never runs out of descriptors.
func TestAutomaticConnectionLimitRefusesBeforeTheFDLimit(t *testing.T) {
	const limit, flood = 160, 240
	p := startWithFDLimit(t, limit, limit)
	want := autoMaxConnections(limit)
	if !strings.Contains(p.logText(), fmt.Sprintf("max_connections=%d", want)) {
		t.Fatalf("the log does not show the automatic limit %d:\n%s", want, p.logText())
	}
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logText(), "connection limit reached") {
		if time.Now().After(deadline) {
			t.Fatalf("no connection refused:\n%s", p.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(p.logText(), "accepting connections failed") {
		t.Errorf("accept ran out of descriptors despite the limit:\n%s", p.logText())
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	c, err := rmq.DialConfig(p.URL(), rmq.Config{Dial: rmq.DefaultDial(15 * time.Second)})
	if err != nil {
		t.Fatalf("connect after the flood: %v\n%s", err, p.logText())
	}
	c.Close()
}
