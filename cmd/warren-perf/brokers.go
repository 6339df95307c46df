package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// broker is a broker process started for the matrix.
type broker struct {
	name string
	uri  string
	pid  int // the process whose RSS and CPU are measured
	stop func()
	// pprof is the host:port of Warren's net/http/pprof, "" for RabbitMQ.
	pprof string
	// bin is Warren's binary, "" for RabbitMQ.
	bin string
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
	pport, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pprofAddr := "127.0.0.1:" + strconv.Itoa(pport)
	cmd := exec.Command(bin, "--amqp-listen", addr, "--mgmt-listen", "", "--data-dir", dir, "--log-level", "warn",
		"--pprof", pprofAddr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	b := &broker{name: "Warren", uri: "amqp://guest:guest@" + addr + "/", pid: cmd.Process.Pid, pprof: pprofAddr, bin: bin, stop: func() {
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

// rabbitScript is the RabbitMQ start script behind Debian's
// /usr/sbin/rabbitmq-server wrapper.
const rabbitScript = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// rabbitCommand returns the command that starts RabbitMQ with as many file
// descriptors as the hard limit allows. Debian's wrapper switches to the
// rabbitmq user with su, whose pam_limits resets the soft limit to 1024
// whatever the caller raised it to; RabbitMQ then reserves part of that for
// files and refuses connections past about 830, which is why scenario (g)
// had no RabbitMQ figure. Run as root, warren-perf therefore runs the
// script behind the wrapper itself, as the rabbitmq user, after raising the
// limit in the same shell.
func rabbitCommand() (*exec.Cmd, error) {
	const raise = "ulimit -n 65536 2>/dev/null || ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; exec "
	if _, err := os.Stat(rabbitScript); err != nil || os.Geteuid() != 0 {
		// Not Debian's layout, or not root: the wrapper (or the script on
		// PATH) is all there is.
		return exec.Command("sh", "-c", raise+"rabbitmq-server"), nil
	}
	u, err := user.Lookup("rabbitmq")
	if err != nil {
		return nil, fmt.Errorf("look up the rabbitmq user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq gid %q: %w", u.Gid, err)
	}
	cmd := exec.Command("sh", "-c", raise+rabbitScript)
	cmd.Dir = u.HomeDir // the Erlang cookie lives there, as with the wrapper
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = []string{"HOME=" + u.HomeDir, "USER=rabbitmq", "LOGNAME=rabbitmq"}
	return cmd, nil
}

// epmdRunning reports whether an Erlang port mapper answers.
func epmdRunning() bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:4369", time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startRabbitMQ runs Debian's rabbitmq-server as a separate node on free
// loopback ports, or returns nil when it is not installed.
func startRabbitMQ() (*broker, error) {
	if _, err := exec.LookPath("rabbitmq-server"); err != nil {
		if _, err := os.Stat(rabbitScript); err != nil {
			return nil, nil
		}
	}
	dir, err := os.MkdirTemp("", "warren-perf-rabbit")
	if err != nil {
		return nil, fmt.Errorf("rabbitmq data dir: %w", err)
	}
	os.Chmod(dir, 0o777) // the node runs as the rabbitmq user
	plugins := filepath.Join(dir, "enabled_plugins")
	if err := os.WriteFile(plugins, []byte("[].\n"), 0o666); err != nil {
		return nil, fmt.Errorf("rabbitmq plugins file: %w", err)
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
	vars := []string{
		"RABBITMQ_NODENAME=" + node,
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(port),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(dist),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "pid"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + plugins,
	}
	hadEPMD := epmdRunning()
	cmd, err := rabbitCommand()
	if err != nil {
		return nil, err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	} else {
		cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"), "LANG=C.UTF-8")
	}
	cmd.Env = append(cmd.Env, vars...)
	logf, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, fmt.Errorf("rabbitmq log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start rabbitmq-server: %w", err)
	}
	b := &broker{name: "RabbitMQ", uri: fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port), stop: func() {
		stop := exec.Command("rabbitmqctl", "-n", node, "stop")
		stop.Env = append(os.Environ(), vars...)
		if err := stop.Run(); err != nil {
			cmd.Process.Kill()
		}
		cmd.Wait()
		logf.Close()
		if !hadEPMD {
			// The node started epmd; stop it again (epmd refuses while
			// another node is registered with it).
			exec.Command("epmd", "-kill").Run()
		}
		os.RemoveAll(dir)
	}}
	if err := waitForLogin(b.uri, 90*time.Second); err != nil {
		b.stop()
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		b.stop()
		return nil, fmt.Errorf("rabbitmq pid file: %w", err)
	}
	if b.pid, err = strconv.Atoi(strings.TrimSpace(string(raw))); err != nil {
		b.stop()
		return nil, fmt.Errorf("rabbitmq pid file %q: %w", raw, err)
	}
	return b, nil
}

// openFilesLimit reads a process's soft limit on open files.
func openFilesLimit(pid int) (int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, fmt.Errorf("read limits of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("no open files limit for pid %d", pid)
}

// processName reads a process's command name.
func processName(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(raw))
}

// descendants lists the processes below pid (children, grandchildren, ...).
func descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		// Each thread lists the children it forked.
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			raw, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(raw)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// rssKiB reads a process's resident set size.
func rssKiB(pid int) (int, error) {
	m, err := readMem(pid)
	return m.vmRSS, err
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
