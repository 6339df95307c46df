package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-runs this test binary as a writer process that adds
// messages and prints each id once its commit is acknowledged, kills it with
// SIGKILL at a random point, and checks that every acknowledged id is
// stored exactly once.

const crashEnv = "WARREN_STORE_CRASH_WRITER"

func TestCrashWriter(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9KeepsEveryCommittedMessage")
	}
	b, err := Open(dir, DefaultOptions())
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	out := make(chan uint64, 1024)
	go func() {
		for id := range out {
			fmt.Println(id)
		}
	}()
	for id := uint64(1); ; id++ {
		id := id
		b.AddMessage(id, []byte(fmt.Sprint("body-", id)), 0, []string{"q"}, func(err error) {
			if err == nil {
				out <- id
			}
		})
		if id%64 == 0 {
			time.Sleep(time.Millisecond) // let commits interleave with writes
		}
	}
}

func TestKill9KeepsEveryCommittedMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	for run := 0; run < 3; run++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 200 + rand.IntN(3000) // acknowledged messages before the kill
		acked := map[uint64]bool{}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			id, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64)
			if err != nil {
				continue
			}
			acked[id] = true
			if len(acked) >= killAfter {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		go func() {
			for sc.Scan() {
			}
		}()
		cmd.Wait()
		if len(acked) < killAfter {
			t.Fatalf("writer ended after %d acknowledged messages", len(acked))
		}
		b, err := Open(dir, DefaultOptions())
		if err != nil {
			t.Fatalf("reopen after kill -9: %v", err)
		}
		seen := map[uint64]int{}
		err = b.ScanQueue("q", 0, func(id uint64, data []byte, _ bool) (bool, error) {
			seen[id]++
			if string(data) != fmt.Sprint("body-", id) {
				t.Errorf("message %d has body %q", id, data)
			}
			return true, nil
		})
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		for id := range acked {
			if seen[id] != 1 {
				t.Fatalf("run %d: acknowledged message %d stored %d times", run, id, seen[id])
			}
		}
		t.Logf("run %d: killed after %d acknowledged, %d stored", run, len(acked), len(seen))
	}
}
