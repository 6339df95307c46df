package main

// The backlog benchmark: issue 4's figures for a queue far larger than
// memory. It starts bin/warren itself on a fresh data dir, publishes N
// persistent messages into one durable queue with no consumer while reading
// the broker's RSS every second, restarts the broker on the same data dir,
// drains the queue, and watches the data dir shrink back as value-log GC
// reclaims the drained bodies.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// backlogQueue is the durable queue the benchmark fills and drains.
const backlogQueue = "warren-perf-backlog"

// backlogConfig is what `warren-perf backlog` measures.
type backlogConfig struct {
	bin          string
	messages     int
	size         int
	producers    int
	confirm      int
	prefetch     int
	multiAck     int
	reclaimWait  time.Duration
	reclaimPoll  time.Duration
	reclaimRatio float64
	out          string
	command      string
}

func parseBacklog(args []string) (backlogConfig, error) {
	var c backlogConfig
	fs := flag.NewFlagSet("backlog", flag.ContinueOnError)
	fs.StringVar(&c.bin, "warren", "bin/warren", "Warren binary (started by warren-perf on a temporary data dir)")
	fs.IntVar(&c.messages, "n", 2_000_000, "messages to publish into the backlog")
	fs.IntVar(&c.size, "s", 1024, "message size in bytes (>= 8: the body carries the message's number)")
	fs.IntVar(&c.producers, "x", 4, "producers, one connection each")
	fs.IntVar(&c.confirm, "c", 1000, "publisher confirm window per producer")
	fs.IntVar(&c.prefetch, "prefetch", 1000, "prefetch of the draining consumer")
	fs.IntVar(&c.multiAck, "multi-ack", 100, "the consumer acks every N deliveries with multiple=true")
	fs.DurationVar(&c.reclaimWait, "reclaim-wait", 5*time.Minute, "how long to watch the data dir shrink after the drain")
	fs.DurationVar(&c.reclaimPoll, "reclaim-poll", 10*time.Second, "how often to measure the data dir after the drain")
	fs.Float64Var(&c.reclaimRatio, "reclaim-ratio", 1.2, "the disk counts as reclaimed at this multiple of its size before the backlog")
	fs.StringVar(&c.out, "out", "docs/BENCHMARKS.md", "report file whose backlog section is replaced (empty: print only)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.messages < 10:
		return c, errors.New("-n must be at least 10")
	case c.size < 8:
		return c, errors.New("-s must be at least 8")
	case c.producers < 1 || c.confirm < 1 || c.prefetch < 0 || c.multiAck < 1:
		return c, errors.New("-x, -c and --multi-ack must be at least 1, --prefetch not negative")
	case c.reclaimPoll <= 0 || c.reclaimRatio < 1:
		return c, errors.New("--reclaim-poll must be positive and --reclaim-ratio at least 1")
	}
	c.command = strings.TrimSpace("warren-perf backlog " + strings.Join(args, " "))
	return c, nil
}

// backlogResult is everything the benchmark measured.
type backlogResult struct {
	cfg backlogConfig

	diskEmpty, diskBefore, diskFull, diskDrained int64 // allocated bytes of the data dir
	reclaim                                      []diskSample
	reclaimedAfter                               time.Duration // since the drain ended; 0: not within reclaimWait
	reclaimed                                    bool

	publish         phase
	stopTime        time.Duration // SIGTERM to exit
	acceptTime      time.Duration // restart to the first AMQP connection
	countTime       time.Duration // restart to a passive declare reporting N
	restartRSS      memSample     // right after the count was right
	drain           phase
	received        int
	duplicates      int
	redelivered     int
	finalQueueCount int
}

// phase is the publish or the drain: when each tenth of the messages was
// done, and the broker's memory meanwhile.
type phase struct {
	elapsed time.Duration
	marks   []time.Duration // elapsed at each tenth, len 10 when complete
	rss     []memSample     // once a second
	peak    memSample       // the sample with the largest VmRSS
}

// diskSample is the data dir's size at a moment after the drain.
type diskSample struct {
	at   time.Duration
	size int64
}

// runBacklog runs the benchmark and writes its section of the report.
func runBacklog(args []string) error {
	c, err := parseBacklog(args)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "warren-backlog")
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("free port: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)

	var mu sync.Mutex
	var running *warrenProcess
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() { // never leave the broker running behind an interrupted run
		if _, ok := <-sig; ok {
			mu.Lock()
			if running != nil {
				running.kill()
			}
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}()
	start := func() (*warrenProcess, error) {
		p, err := startWarrenProcess(c.bin, dir, addr)
		mu.Lock()
		running = p
		mu.Unlock()
		return p, err
	}
	r, err := measureBacklog(c, dir, start)
	mu.Lock()
	if running != nil {
		running.kill()
		running = nil
	}
	mu.Unlock()
	if err != nil {
		return err
	}
	text := r.render()
	fmt.Print(text)
	if c.out == "" {
		return nil
	}
	old, err := os.ReadFile(c.out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	if err := os.WriteFile(c.out, []byte(backlogSection.replace(string(old), text)), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(os.Stderr, "backlog section written to %s\n", c.out)
	return nil
}

// measureBacklog runs the steps; start starts the broker on the data dir.
func measureBacklog(c backlogConfig, dir string, start func() (*warrenProcess, error)) (*backlogResult, error) {
	r := &backlogResult{cfg: c}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "backlog: "+f+"\n", a...) }

	p, err := start()
	if err != nil {
		return nil, err
	}
	if _, err := p.waitAccepting(30 * time.Second); err != nil {
		return nil, err
	}
	if r.diskEmpty, err = dirSize(dir); err != nil {
		return nil, err
	}
	if err := declareBacklogQueue(p.uri()); err != nil {
		return nil, err
	}
	if r.diskBefore, err = dirSize(dir); err != nil {
		return nil, err
	}
	logf("data dir %s: %s empty, %s with the queue declared", dir, mib(r.diskEmpty), mib(r.diskBefore))

	logf("publishing %d persistent messages of %d B with %d producers (confirm window %d)...", c.messages, c.size, c.producers, c.confirm)
	if r.publish, err = publishBacklog(c, p); err != nil {
		return nil, err
	}
	logf("published in %s, peak RSS %s", r.publish.elapsed.Round(time.Millisecond), kib(r.publish.peak.vmRSS))
	if r.diskFull, err = dirSize(dir); err != nil {
		return nil, err
	}

	t0 := time.Now()
	if err := p.stop(time.Minute); err != nil {
		return nil, err
	}
	r.stopTime = time.Since(t0)
	logf("stopped in %s; restarting on the same data dir", r.stopTime.Round(time.Millisecond))
	if p, err = start(); err != nil {
		return nil, err
	}
	if r.acceptTime, err = p.waitAccepting(5 * time.Minute); err != nil {
		return nil, err
	}
	if r.countTime, err = p.waitCount(c.messages, 5*time.Minute); err != nil {
		return nil, err
	}
	r.restartRSS, _ = readMem(p.pid)
	logf("accepting after %s, %d messages reported after %s", r.acceptTime.Round(time.Millisecond), c.messages, r.countTime.Round(time.Millisecond))

	logf("draining with one consumer (prefetch %d, multi-ack %d)...", c.prefetch, c.multiAck)
	if err := drainBacklog(c, p, r); err != nil {
		return nil, err
	}
	logf("drained %d in %s, peak RSS %s", r.received, r.drain.elapsed.Round(time.Millisecond), kib(r.drain.peak.vmRSS))
	if r.received != c.messages || r.duplicates > 0 || r.finalQueueCount != 0 {
		return nil, fmt.Errorf("drain: received %d of %d (%d duplicates), queue reports %d left",
			r.received, c.messages, r.duplicates, r.finalQueueCount)
	}

	drained := time.Now()
	if r.diskDrained, err = dirSize(dir); err != nil {
		return nil, err
	}
	goal := reclaimGoal(r.diskBefore, c.reclaimRatio)
	r.reclaim = append(r.reclaim, diskSample{0, r.diskDrained})
	logf("data dir after the drain: %s (goal %s); watching it for up to %s", mib(r.diskDrained), mib(goal), c.reclaimWait)
	t := time.NewTicker(c.reclaimPoll)
	defer t.Stop()
	for size := r.diskDrained; size > goal; {
		if time.Since(drained) >= c.reclaimWait {
			break
		}
		<-t.C
		if size, err = dirSize(dir); err != nil {
			return nil, err
		}
		at := time.Since(drained)
		r.reclaim = append(r.reclaim, diskSample{at, size})
		logf("after %s: %s", at.Round(time.Second), mib(size))
	}
	if last := r.reclaim[len(r.reclaim)-1]; last.size <= goal {
		r.reclaimed, r.reclaimedAfter = true, last.at
	}
	if err := p.stop(time.Minute); err != nil {
		return nil, err
	}
	return r, nil
}

// declareBacklogQueue declares the durable queue (empty: the data dir is new).
func declareBacklogQueue(uri string) error {
	conn, ch, err := dialChannel(uri, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := ch.QueueDeclare(backlogQueue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare %s: %w", backlogQueue, err)
	}
	return nil
}

// sampleMem reads pid's memory every second into ph until stop is closed.
func sampleMem(pid int, ph *phase, start time.Time, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	take := func() {
		if m, err := readMem(pid); err == nil {
			m.at = time.Since(start)
			ph.rss = append(ph.rss, m)
			if m.vmRSS > ph.peak.vmRSS {
				ph.peak = m
			}
		}
	}
	take()
	for {
		select {
		case <-stop:
			take()
			return
		case <-t.C:
			take()
		}
	}
}

// tenths records when a running count crosses each tenth of n.
type tenths struct {
	n     int
	start time.Time
	mu    sync.Mutex
	marks []time.Duration
}

// update is called with the count after each step; it is cheap when no
// tenth is crossed.
func (t *tenths) update(count int) {
	if len(t.marks) >= 10 || count < (len(t.marks)+1)*t.n/10 {
		return
	}
	t.mu.Lock()
	for len(t.marks) < 10 && count >= (len(t.marks)+1)*t.n/10 {
		t.marks = append(t.marks, time.Since(t.start))
	}
	t.mu.Unlock()
}

// publishBacklog publishes c.messages from c.producers connections, each
// with its own confirm window, and waits for every confirm.
func publishBacklog(c backlogConfig, p *warrenProcess) (phase, error) {
	var ph phase
	stop, done := make(chan struct{}), make(chan struct{})
	tt := &tenths{n: c.messages, start: time.Now()}
	go sampleMem(p.pid, &ph, tt.start, stop, done)
	var confirmed atomic.Int64
	var next atomic.Int64 // the number the next message carries
	errs := make(chan error, c.producers)
	var wg sync.WaitGroup
	for i := 0; i < c.producers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- publishSome(c, p.uri(), &next, &confirmed, tt)
		}()
	}
	wg.Wait()
	elapsed := time.Since(tt.start)
	close(stop)
	<-done
	ph.elapsed = elapsed
	close(errs)
	for err := range errs {
		if err != nil {
			return ph, err
		}
	}
	if got := confirmed.Load(); got != int64(c.messages) {
		return ph, fmt.Errorf("publish: %d of %d confirmed", got, c.messages)
	}
	ph.marks = tt.marks
	return ph, nil
}

// publishSome publishes messages numbered from next until c.messages are
// taken, keeping up to c.confirm unconfirmed; a nack is an error.
func publishSome(c backlogConfig, uri string, next, confirmed *atomic.Int64, tt *tenths) error {
	conn, ch, err := dialChannel(uri, "producer")
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm.select: %w", err)
	}
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, c.confirm))
	body := make([]byte, c.size)
	msg := rmq.Publishing{Body: body, DeliveryMode: rmq.Persistent}
	outstanding := 0
	await := func() error {
		cf, ok := <-confirms
		if !ok {
			return errors.New("channel closed while waiting for confirms")
		}
		if !cf.Ack {
			return fmt.Errorf("message %d nacked", cf.DeliveryTag)
		}
		outstanding--
		tt.update(int(confirmed.Add(1)))
		return nil
	}
	for {
		n := next.Add(1) - 1
		if n >= int64(c.messages) {
			break
		}
		for outstanding >= c.confirm {
			if err := await(); err != nil {
				return err
			}
		}
		binary.BigEndian.PutUint64(body, uint64(n))
		if err := ch.PublishWithContext(context.Background(), "", backlogQueue, false, false, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		outstanding++
	}
	for outstanding > 0 {
		if err := await(); err != nil {
			return err
		}
	}
	return nil
}

// drainBacklog consumes every message with one consumer, checks each
// number arrives once, and reads the queue's count at the end.
func drainBacklog(c backlogConfig, p *warrenProcess, r *backlogResult) error {
	conn, ch, err := dialChannel(p.uri(), "consumer")
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ch.Qos(c.prefetch, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	tt := &tenths{n: c.messages, start: time.Now()}
	go sampleMem(p.pid, &r.drain, tt.start, stop, done)
	ds, err := ch.Consume(backlogQueue, "", false, false, false, false, nil)
	if err != nil {
		close(stop)
		<-done
		return fmt.Errorf("consume: %w", err)
	}
	seen := make([]uint64, (c.messages+63)/64)
	idle := time.NewTimer(time.Minute)
	defer idle.Stop()
	var last rmq.Delivery
	unacked := 0
loop:
	for r.received < c.messages {
		select {
		case d, ok := <-ds:
			if !ok {
				break loop
			}
			idle.Reset(time.Minute)
			if len(d.Body) >= 8 {
				n := binary.BigEndian.Uint64(d.Body)
				if n < uint64(c.messages) {
					if seen[n/64]&(1<<(n%64)) != 0 {
						r.duplicates++
					}
					seen[n/64] |= 1 << (n % 64)
				}
			}
			if d.Redelivered {
				r.redelivered++
			}
			r.received++
			tt.update(r.received)
			last, unacked = d, unacked+1
			if unacked >= c.multiAck {
				if err := d.Ack(true); err != nil {
					break loop
				}
				unacked = 0
			}
		case <-idle.C:
			break loop // nothing for a minute: the count check below fails
		}
	}
	if unacked > 0 {
		last.Ack(true)
	}
	elapsed := time.Since(tt.start)
	close(stop)
	<-done
	r.drain.elapsed, r.drain.marks = elapsed, tt.marks
	q, err := ch.QueueDeclarePassive(backlogQueue, true, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("passive declare after the drain: %w", err)
	}
	r.finalQueueCount = q.Messages
	return nil
}

// warrenProcess is bin/warren running on the benchmark's data dir.
type warrenProcess struct {
	cmd     *exec.Cmd
	pid     int
	addr    string
	started time.Time
	exited  chan struct{}
	err     error // the exit error, set before exited is closed
}

// startWarrenProcess runs bin on dir, listening for AMQP on addr, with
// management disabled.
func startWarrenProcess(bin, dir, addr string) (*warrenProcess, error) {
	cmd := exec.Command(bin, "--amqp-listen", addr, "--mgmt-listen", "", "--data-dir", dir, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	p := &warrenProcess{cmd: cmd, addr: addr, exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p.pid = cmd.Process.Pid
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *warrenProcess) uri() string { return "amqp://guest:guest@" + p.addr + "/" }

// waitAccepting dials until a connection opens and returns the time since
// the process started.
func (p *warrenProcess) waitAccepting(timeout time.Duration) (time.Duration, error) {
	deadline := p.started.Add(timeout)
	for {
		c, err := rmq.Dial(p.uri())
		if err == nil {
			c.Close()
			return time.Since(p.started), nil
		}
		select {
		case <-p.exited:
			return 0, fmt.Errorf("warren exited before accepting connections: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("warren not accepting connections after %s: %w", timeout, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a port: no event to wait for
	}
}

// waitCount declares the queue passively until it reports n messages and
// returns the time since the process started.
func (p *warrenProcess) waitCount(n int, timeout time.Duration) (time.Duration, error) {
	conn, err := rmq.Dial(p.uri())
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	deadline := p.started.Add(timeout)
	last := -1
	for {
		ch, err := conn.Channel()
		if err != nil {
			return 0, fmt.Errorf("channel: %w", err)
		}
		q, err := ch.QueueDeclarePassive(backlogQueue, true, false, false, false, nil)
		if err == nil {
			ch.Close()
			if q.Messages == n {
				return time.Since(p.started), nil
			}
			last = q.Messages
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("queue reports %d messages after %s, want %d (last error %v)", last, timeout, n, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a count: no event to wait for
	}
}

// stop sends SIGTERM and waits for the exit.
func (p *warrenProcess) stop(timeout time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal warren: %w", err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("warren exited with %w", p.err)
		}
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("warren did not stop within %s after SIGTERM", timeout)
	}
}

// kill ends the process if it still runs.
func (p *warrenProcess) kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// memSample is a process's memory at one moment, in KiB, and when it
// was taken (since its phase began).
type memSample struct {
	vmRSS, rssAnon, rssFile int
	at                      time.Duration
}

// readMem reads VmRSS, RssAnon and RssFile of pid.
func readMem(pid int) (memSample, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	return parseStatusMem(string(raw))
}

// parseStatusMem reads the memory lines of a /proc/<pid>/status text.
func parseStatusMem(status string) (memSample, error) {
	var m memSample
	found := false
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var dst *int
		switch f[0] {
		case "VmRSS:":
			dst, found = &m.vmRSS, true
		case "RssAnon:":
			dst = &m.rssAnon
		case "RssFile:":
			dst = &m.rssFile
		default:
			continue
		}
		v, err := strconv.Atoi(f[1])
		if err != nil {
			return m, fmt.Errorf("status line %q: %w", line, err)
		}
		*dst = v
	}
	if !found {
		return m, errors.New("no VmRSS in status")
	}
	return m, nil
}

// dirSize is the disk space the files under dir take (allocated blocks,
// as du counts: Badger preallocates sparse files, so their apparent sizes
// say little).
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile (GC, compaction)
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		} else {
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return total, nil
}

// reclaimSlack is how far above its size before the backlog the data dir
// may stay and count as reclaimed, whatever the ratio: an empty store is
// a few dozen KiB, and a fifth of that is below what one rewrite of
// Badger's MANIFEST or one file-system block adds.
const reclaimSlack = 64 << 10

// reclaimGoal is the disk use at which a drained backlog counts as
// reclaimed: ratio times the size before, or that size plus reclaimSlack.
func reclaimGoal(before int64, ratio float64) int64 {
	return max(int64(float64(before)*ratio), before+reclaimSlack)
}
