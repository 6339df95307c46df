package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// broker is a broker process started for the matrix.
type broker struct {
	name string
	uri  string
	pid  int // the process whose RSS and CPU are measured
	stop func()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitForLogin dials uri until a login succeeds or the timeout passes.
func waitForLogin(uri string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := rmq.Dial(uri)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker at %s not ready: %w", uri, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startWarren runs the Warren binary on a free port with a temporary data dir.
func startWarren(bin string) (*broker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "warren-perf-data")
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--amqp-listen", addr, "--mgmt-listen", "", "--data-dir", dir, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	b := &broker{name: "Warren", uri: "amqp://guest:guest@" + addr + "/", pid: cmd.Process.Pid, stop: func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		os.RemoveAll(dir)
	}}
	if err := waitForLogin(b.uri, 30*time.Second); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// startRabbitMQ runs Debian's rabbitmq-server as a separate node on free
// loopback ports, or returns nil when it is not installed.
func startRabbitMQ() (*broker, error) {
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "warren-perf-rabbit")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o777) // the Debian wrapper runs the node as the rabbitmq user
	plugins := filepath.Join(dir, "enabled_plugins")
	if err := os.WriteFile(plugins, []byte("[].\n"), 0o666); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dist, err := freePort()
	if err != nil {
		return nil, err
	}
	node := "warrenperf" + randomID() + "@localhost"
	env := append(os.Environ(),
		"RABBITMQ_NODENAME="+node,
		"RABBITMQ_NODE_PORT="+strconv.Itoa(port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+plugins,
	)
	// Debian's default of 1024 file descriptors caps RabbitMQ near 830
	// connections; raise it so scenario (g) measures memory, not the limit.
	cmd := exec.Command("sh", "-c", "ulimit -n 65536 2>/dev/null; exec rabbitmq-server")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rabbitmq-server: %w", err)
	}
	b := &broker{name: "RabbitMQ", uri: fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port), stop: func() {
		stop := exec.Command("rabbitmqctl", "-n", node, "stop")
		stop.Env = env
		if err := stop.Run(); err != nil {
			cmd.Process.Kill()
		}
		cmd.Wait()
		os.RemoveAll(dir)
	}}
	if err := waitForLogin(b.uri, 90*time.Second); err != nil {
		b.stop()
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err == nil {
		b.pid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
	}
	return b, nil
}

// rssKiB reads a process's resident set size.
func rssKiB(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuSeconds reads a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}
