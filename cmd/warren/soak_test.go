package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// TestSoak runs the broker under load for WARREN_SOAK (a duration, e.g.
// 10m; `make soak`), skipping otherwise. Publishers send persistent
// messages with confirms to a durable queue and consumers ack them; a
// transient publisher fills another queue whose consumer comes and goes,
// so the memory alarm (watermark 80 MB) comes and goes; a filler file
// takes the data dir's small file system down to its disk alarm and
// gives the space back; and every minute the broker is killed with
// SIGKILL and restarted on the same data dir and port. At the end the
// load stops and the queues drain: every confirmed persistent message
// must have been delivered, and the broker's RSS and open files must be
// back near what they were at the first start. The figures are printed.
func TestSoak(t *testing.T) {
	spec := os.Getenv("WARREN_SOAK")
	if spec == "" {
		t.Skip("the soak runs with `make soak` (WARREN_SOAK=10m)")
	}
	total, err := time.ParseDuration(spec)
	if err != nil {
		t.Fatalf("WARREN_SOAK: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "warren-soak")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil { // no -race: figures like production
		t.Fatalf("build: %v\n%s", err, out)
	}
	fs := smallExt4(t, 384<<20)
	dir := filepath.Join(fs, "data")
	addr := freePort(t)
	watermark := 80.0 * (1 << 20) / float64(totalRAM(t))
	args := []string{"--amqp-listen", addr, "--mgmt-listen", "", "--data-dir", dir,
		"--disk-free-limit", strconv.Itoa(48 << 20), "--memory-high-watermark", strconv.FormatFloat(watermark, 'g', 6, 64),
		"--queue-memory-messages", "2000"}
	start := func() *process { return startCommand(t, exec.Command(bin, args...), addr, dir) }
	p := start()
	url := p.URL()
	time.Sleep(2 * time.Second) // settle before the baseline
	baseRSS, baseFDs := procFigures(t, p)
	t.Logf("start: RSS %d MB, %d open files; memory watermark %.0f MB; data dir on a 384 MB ext4 loop device, disk limit 48 MB",
		baseRSS>>20, baseFDs, watermark*float64(totalRAM(t))/(1<<20))

	var st soakState
	st.confirmed = map[string]bool{}
	st.delivered = map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	for w := 0; w < 3; w++ {
		run(func(ctx context.Context) { st.publishPersistent(ctx, url, w) })
	}
	for w := 0; w < 2; w++ {
		run(func(ctx context.Context) { st.consume(ctx, url, "soak-p", true, nil) })
	}
	run(func(ctx context.Context) { st.publishTransient(ctx, url) })
	hold := &atomic.Bool{}
	run(func(ctx context.Context) { st.consumeHolding(ctx, url, "soak-mem", hold) })

	deadline := time.Now().Add(total)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	kills, memAlarms, diskAlarms := 0, 0, 0
	countAlarms := func(p *process) {
		logs := p.logText()
		memAlarms += strings.Count(logs, `msg="memory alarm" set=true`)
		diskAlarms += strings.Count(logs, `msg="disk alarm" set=true`)
	}
	for minute := 0; time.Now().Before(deadline); minute++ {
		end := time.Now().Add(time.Minute)
		if end.After(deadline) {
			end = deadline
		}
		// The memory alarm comes (the transient queue's consumer holds
		// its deliveries unacked, which no paging can move) and goes (it
		// acks them) within the minute; so does the disk alarm (a filler
		// takes the space down to the limit, then goes).
		hold.Store(true)
		filled := false
		var filler string
		for time.Now().Before(end) {
			left := time.Until(end)
			switch {
			case left < 40*time.Second && hold.Load():
				hold.Store(false)
			case left < 35*time.Second && left > 20*time.Second && !filled:
				filler, filled = fillTo(t, fs, 40<<20), true
			case left < 20*time.Second && filler != "":
				os.Remove(filler)
				filler = ""
			}
			select {
			case err := <-p.exited:
				t.Fatalf("the broker died on its own: %v\n%s", err, tail([]byte(p.logText()), 3000))
			case <-time.After(250 * time.Millisecond):
			}
		}
		if filler != "" {
			os.Remove(filler)
		}
		if !time.Now().Before(deadline) {
			break
		}
		rss, fds := procFigures(t, p)
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
		p.kill()
		kills++
		countAlarms(p)
		st.mu.Lock()
		t.Logf("minute %d: killed (RSS %d MB, %d open files); %d confirmed, %d delivered so far; alarms so far: memory %d, disk %d",
			minute+1, rss>>20, fds, len(st.confirmed), len(st.delivered), memAlarms, diskAlarms)
		st.mu.Unlock()
		p = start()
	}

	// The end: stop publishing, drain both queues, and look at the figures.
	stop()
	wg.Wait()
	st.drain(t, url, "soak-p")
	st.drain(t, url, "soak-mem")
	// Let GC give the drained space and memory back (value-log GC runs
	// after a quiet minute).
	rss, fds := procFigures(t, p)
	for settle := time.Now(); time.Since(settle) < 150*time.Second && (rss > 2*baseRSS+64<<20 || fds > baseFDs+32); {
		time.Sleep(5 * time.Second)
		rss, fds = procFigures(t, p)
	}
	countAlarms(p)
	st.mu.Lock()
	defer st.mu.Unlock()
	var lost []string
	for id := range st.confirmed {
		if !st.delivered[id] {
			lost = append(lost, id)
		}
	}
	t.Logf("end after %v and %d kills: %d persistent messages confirmed, %d delivered (%d redelivered), %d nacked, %d transient delivered; memory alarms %d, disk alarms %d; RSS %d MB (start %d MB), %d open files (start %d)",
		total, kills, len(st.confirmed), len(st.delivered), st.redelivered.Load(), st.nacked.Load(), st.transient.Load(),
		memAlarms, diskAlarms, rss>>20, baseRSS>>20, fds, baseFDs)
	if memAlarms == 0 || diskAlarms == 0 {
		t.Errorf("the memory alarm went off %d times and the disk alarm %d times; the soak wants both", memAlarms, diskAlarms)
	}
	if len(lost) > 0 {
		t.Errorf("%d confirmed messages were never delivered, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	if rss > 2*baseRSS+64<<20 {
		t.Errorf("RSS %d MB at the end, %d MB at the start", rss>>20, baseRSS>>20)
	}
	if fds > baseFDs+32 { // the store's tables are open files too

		t.Errorf("%d open files at the end, %d at the start", fds, baseFDs)
	}
}

// soakState is what the soak's clients saw.
type soakState struct {
	mu          sync.Mutex
	confirmed   map[string]bool // persistent messages confirmed
	delivered   map[string]bool // persistent messages delivered
	redelivered atomic.Int64
	nacked      atomic.Int64
	transient   atomic.Int64
}

// dialSoak connects, retrying while the broker restarts, until ctx ends.
func dialSoak(ctx context.Context, url string) (*rmq.Connection, *rmq.Channel, error) {
	for ctx.Err() == nil {
		c, err := rmq.DialConfig(url, rmq.Config{Dial: rmq.DefaultDial(5 * time.Second)})
		if err == nil {
			ch, err := c.Channel()
			if err == nil {
				_, err = ch.QueueDeclare("soak-p", true, false, false, false, nil)
			}
			if err == nil {
				_, err = ch.QueueDeclare("soak-mem", false, false, false, false, nil)
			}
			if err == nil {
				return c, ch, nil
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, nil, ctx.Err()
}

// publishPersistent publishes persistent messages with confirms, in
// windows of 100, recording the confirmed ones, until ctx ends.
func (st *soakState) publishPersistent(ctx context.Context, url string, w int) {
	n := 0
	for ctx.Err() == nil {
		c, ch, err := dialSoak(ctx, url)
		if err != nil {
			return
		}
		if err := ch.Confirm(false); err != nil {
			c.Close()
			continue
		}
		ids := make([]string, 0, 100)
		dcs := make([]*rmq.DeferredConfirmation, 0, 100)
		for ctx.Err() == nil {
			id := fmt.Sprintf("p%d-%d", w, n)
			n++
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "soak-p", false, false,
				rmq.Publishing{DeliveryMode: rmq.Persistent, Body: append([]byte(id+" "), make([]byte, 1024)...)})
			if err != nil {
				break
			}
			ids, dcs = append(ids, id), append(dcs, dc)
			if len(dcs) < cap(dcs) {
				continue
			}
			if !st.settle(ctx, ids, dcs) {
				break
			}
			ids, dcs = ids[:0], dcs[:0]
		}
		c.Close()
	}
}

// settle waits for a window of confirms; false when the connection failed.
func (st *soakState) settle(ctx context.Context, ids []string, dcs []*rmq.DeferredConfirmation) bool {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, dc := range dcs {
		ok, err := dc.WaitContext(wctx)
		if err != nil {
			return false
		}
		if !ok {
			st.nacked.Add(1)
			continue
		}
		st.mu.Lock()
		st.confirmed[ids[i]] = true
		st.mu.Unlock()
	}
	return true
}

// publishTransient publishes 8 KiB transient messages at about 1,500 a
// second until ctx ends.
func (st *soakState) publishTransient(ctx context.Context, url string) {
	body := make([]byte, 8<<10)
	for ctx.Err() == nil {
		c, ch, err := dialSoak(ctx, url)
		if err != nil {
			return
		}
		tick := time.NewTicker(10 * time.Millisecond)
		for ctx.Err() == nil {
			<-tick.C
			failed := false
			for i := 0; i < 15 && !failed; i++ {
				failed = ch.PublishWithContext(ctx, "", "soak-mem", false, false, rmq.Publishing{Body: body}) != nil
			}
			if failed {
				break
			}
		}
		tick.Stop()
		c.Close()
	}
}

// consume acks what q delivers until ctx ends; with active set, only
// while it is true. Persistent deliveries are recorded.
func (st *soakState) consume(ctx context.Context, url, q string, persistent bool, active *atomic.Bool) {
	for ctx.Err() == nil {
		if active != nil && !active.Load() {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c, ch, err := dialSoak(ctx, url)
		if err != nil {
			return
		}
		if err := ch.Qos(200, 0, false); err != nil {
			c.Close()
			continue
		}
		ds, err := ch.ConsumeWithContext(ctx, q, "", false, false, false, false, nil)
		if err != nil {
			c.Close()
			continue
		}
	receiving:
		for ctx.Err() == nil && (active == nil || active.Load()) {
			select {
			case d, ok := <-ds:
				if !ok {
					break receiving
				}
				st.record(d, persistent)
				if d.Ack(false) != nil {
					break receiving
				}
			case <-time.After(100 * time.Millisecond):
			}
		}
		c.Close()
	}
}

// consumeHolding consumes q without a prefetch limit until ctx ends,
// holding its deliveries unacked while hold is set and acking them all
// (and what follows) once it is not.
func (st *soakState) consumeHolding(ctx context.Context, url, q string, hold *atomic.Bool) {
	for ctx.Err() == nil {
		c, ch, err := dialSoak(ctx, url)
		if err != nil {
			return
		}
		ds, err := ch.ConsumeWithContext(ctx, q, "", false, false, false, false, nil)
		if err != nil {
			c.Close()
			continue
		}
		var held *rmq.Delivery
	receiving:
		for ctx.Err() == nil {
			if held != nil && !hold.Load() {
				if held.Ack(true) != nil {
					break
				}
				held = nil
			}
			select {
			case d, ok := <-ds:
				if !ok {
					break receiving
				}
				st.record(d, false)
				held = &d
			case <-time.After(100 * time.Millisecond):
			}
		}
		c.Close()
	}
}

// record notes a delivery.
func (st *soakState) record(d rmq.Delivery, persistent bool) {
	if !persistent {
		st.transient.Add(1)
		return
	}
	id, _, _ := strings.Cut(string(d.Body), " ")
	if d.Redelivered {
		st.redelivered.Add(1)
	}
	st.mu.Lock()
	st.delivered[id] = true
	st.mu.Unlock()
}

// drain consumes q until it is empty.
func (st *soakState) drain(t *testing.T, url, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, ch, err := dialSoak(ctx, url)
	if err != nil {
		t.Fatalf("drain %s: %v", q, err)
	}
	defer c.Close()
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatalf("drain %s: %v", q, err)
		}
		if !ok {
			return
		}
		st.record(d, q == "soak-p")
		if ctx.Err() != nil {
			t.Fatalf("drain %s: still not empty after 3 minutes", q)
		}
	}
}

// smallExt4 mounts an ext4 file system of size bytes, on a loop device
// over a file in the test's temporary directory, and unmounts it at the
// end. It needs root and mkfs.ext4: without them the test is skipped,
// saying so.
func smallExt4(t *testing.T, size int64) string {
	t.Helper()
	tmp := t.TempDir()
	img, dir := filepath.Join(tmp, "fs.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("cannot make an ext4 file system for the data dir: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount a file system for the data dir (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillTo writes a filler file in dir until its file system has about free
// bytes left, and returns the file's path.
func fillTo(t *testing.T, dir string, free int64) string {
	t.Helper()
	path := filepath.Join(dir, "soak-filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := 0; i < 4096; i++ { // bounded: 4 GiB
		if fsFree(t, dir) <= free {
			break
		}
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("write the filler: %v", err)
			}
			break
		}
	}
	return path
}

// fsFree returns the free bytes of dir's file system.
func fsFree(t *testing.T, dir string) int64 {
	t.Helper()
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return int64(s.Bavail) * int64(s.Bsize)
}

// procFigures returns a process's RSS and open files.
func procFigures(t *testing.T, p *process) (rss int64, fds int) {
	t.Helper()
	pid := p.cmd.Process.Pid
	kib, err := statusKiB(pid, "VmRSS")
	if err != nil {
		t.Fatalf("RSS of %d: %v", pid, err)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("open files of %d: %v", pid, err)
	}
	return int64(kib) << 10, len(ents)
}

// totalRAM returns the machine's memory in bytes.
func totalRAM(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
