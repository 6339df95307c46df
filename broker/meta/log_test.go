package meta

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/store"
)

// recorder is an Applier that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	changes [][]Change
}

func (r *recorder) Apply(cs []Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, cs)
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.changes)
}

// faultyStore fails the writes of the kinds in fail.
type faultyStore struct {
	Store
	mu   sync.Mutex
	fail map[string]bool // kind -> PutMeta fails
	dels bool            // DeleteMetaKeys fails
}

var errDisk = errors.New("disk on fire")

func (f *faultyStore) PutMeta(kind, key string, value []byte) error {
	f.mu.Lock()
	fail := f.fail[kind]
	f.mu.Unlock()
	if fail {
		return errDisk
	}
	return f.Store.PutMeta(kind, key, value)
}

func (f *faultyStore) DeleteMetaKeys(kind string, keys []string) error {
	f.mu.Lock()
	fail := f.dels
	f.mu.Unlock()
	if fail {
		return errDisk
	}
	return f.Store.DeleteMetaKeys(kind, keys)
}

func (f *faultyStore) set(kind string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[kind] = fail
}

func newMemory(t *testing.T) *store.Memory {
	m := store.NewMemory()
	t.Cleanup(func() { m.Close() })
	return m
}

func snapshotOf(l *Local, durableOnly bool) []byte {
	var b []byte
	l.View(func(s *State) { b = Snapshot(s, durableOnly) })
	return b
}

// logIndexes lists the indexes of the log entries in st, and the index the
// snapshot covers (0: none).
func logIndexes(t *testing.T, st Store) (entries []uint64, snap uint64) {
	t.Helper()
	if err := st.ListMeta(kindLog, func(key string, _ []byte) error {
		entries = append(entries, binary.BigEndian.Uint64([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.ListMeta(kindSnapshot, func(_ string, v []byte) error {
		snap = binary.BigEndian.Uint64(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return entries, snap
}

// reopen opens a new Local on st and checks that it has the durable state
// of l, handed to its applier as puts in State.Each order.
func reopen(t *testing.T, st Store, l *Local, every int) *Local {
	t.Helper()
	rec := &recorder{}
	l2, err := OpenLocal(st, rec, every)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	want := snapshotOf(l, true)
	if got := snapshotOf(l2, false); !bytes.Equal(got, want) {
		var gs, ws string
		l2.View(func(s *State) { gs = dumpState(s) })
		l.View(func(s *State) { ws = dumpDurable(s) })
		t.Fatalf("reopened state:\n%s\nwant the durable state:\n%s", gs, ws)
	}
	if l2.Fresh() {
		t.Error("a reopened store is fresh")
	}
	if rec.calls() != 1 {
		t.Fatalf("the applier was called %d times on open", rec.calls())
	}
	var want2 []Record
	l2.View(func(s *State) { s.Each(func(r Record) { want2 = append(want2, r) }) })
	for i, c := range rec.changes[0] {
		if c.Delete || !c.Durable || c.Record != want2[i] {
			t.Fatalf("open change %d: %+v", i, c)
		}
	}
	return l2
}

func TestLocalRestartGivesTheDurableState(t *testing.T) {
	const every = 3
	st := newMemory(t)
	rec := &recorder{}
	l, err := OpenLocal(st, rec, every)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Fresh() {
		t.Error("a new store is not fresh")
	}
	if rec.calls() != 1 || len(rec.changes[0]) != 0 {
		t.Errorf("open of an empty store applied %v", rec.changes)
	}
	ctx := context.Background()
	ops := append(richOps(),
		DeclareQueue{Queue: Queue{Vhost: "/", Name: "transient-only"}}, // writes no entry
		DeleteQueue{Vhost: "/", Name: "q"},
		Unbind{Binding: toExchange("v", "ad", "x", "")},
		DeleteUser{Name: "alice"},
		PutUser{User: User{Name: "alice", PasswordHash: "again"}},
		DeleteVhost{Name: "v"},
		AddVhost{Name: "v"},
	)
	for i, op := range ops {
		calls := rec.calls()
		var cs []Change
		l.View(func(s *State) { cs = s.Clone().Apply(op) })
		if err := l.Propose(ctx, op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if got := rec.calls() - calls; (got == 1) != (len(cs) > 0) {
			t.Errorf("%s: the applier was called %d times for %d changes", op, got, len(cs))
		}
		entries, snap := logIndexes(t, st)
		if len(entries) >= every {
			t.Errorf("after op %d: %d log entries (snapshot every %d)", i, len(entries), every)
		}
		for _, e := range entries {
			if e <= snap {
				t.Errorf("after op %d: entry %d is folded into the snapshot of %d", i, e, snap)
			}
		}
		// Reopen on the same store after every op: snapshot plus tail.
		reopen(t, st, l, every)
	}
	if _, snap := logIndexes(t, st); snap == 0 {
		t.Fatal("no snapshot was written")
	}

	// A refused op is the check's error, and writes nothing.
	entries, snap := logIndexes(t, st)
	err = l.Propose(ctx, DeclareQueue{Queue: Queue{Vhost: "/", Name: "amq.q"}})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("reserved name: %v", err)
	}
	if e2, s2 := logIndexes(t, st); fmt.Sprint(e2, s2) != fmt.Sprint(entries, snap) {
		t.Errorf("a refused op changed the log: %v %d -> %v %d", entries, snap, e2, s2)
	}

	// The reopened log goes on where the first stopped, and is reopened
	// again: its entries follow the first's, none is overwritten.
	l2 := reopen(t, st, l, every)
	for i := range 7 {
		op := DeclareQueue{Queue: Queue{Vhost: "v", Name: fmt.Sprintf("after-%d", i), Durable: true}}
		if err := l2.Propose(ctx, op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		reopen(t, st, l2, every)
	}
	if e, _ := logIndexes(t, st); len(e) == 0 {
		t.Error("no log tail left to replay") // 7 entries with every=3 leave one
	}
	l3 := reopen(t, st, l2, every)
	if err := l3.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if e, _ := logIndexes(t, st); len(e) != 0 {
		t.Errorf("entries %v are left after a snapshot", e)
	}
	reopen(t, st, l3, every)
}

func TestLocalStoreFailureLeavesTheStateUnchanged(t *testing.T) {
	st := &faultyStore{Store: newMemory(t), fail: map[string]bool{}}
	rec := &recorder{}
	l, err := OpenLocal(st, rec, 100)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, op := range richOps() {
		if err := l.Propose(ctx, op); err != nil {
			t.Fatal(err)
		}
	}
	st.set(kindLog, true)
	for _, op := range []Op{
		DeleteVhost{Name: "v"},
		DeleteUser{Name: "alice"},
		DeleteQueue{Vhost: "/", Name: "q"},
		Batch{Ops: []Op{AddVhost{Name: "w"}, DeclareQueue{Queue: Queue{Vhost: "w", Name: "q", Durable: true}}}},
	} {
		before := snapshotOf(l, false)
		calls := rec.calls()
		err := l.Propose(ctx, op)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.InternalError {
			t.Fatalf("%s with a failing store: %v", op, err)
		}
		if !bytes.Equal(snapshotOf(l, false), before) {
			t.Errorf("%s failed to store but changed the state", op)
		}
		if rec.calls() != calls {
			t.Errorf("%s failed to store but was handed to the applier", op)
		}
	}
	// The failures left no entry and no gap: once the store works, the
	// same ops go through and a restart finds them.
	st.set(kindLog, false)
	if err := l.Propose(ctx, DeleteUser{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	reopen(t, st, l, 100)
}

func TestLocalSnapshotFailureKeepsTheOp(t *testing.T) {
	st := &faultyStore{Store: newMemory(t), fail: map[string]bool{}}
	l, err := OpenLocal(st, &recorder{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Propose(ctx, AddVhost{Name: "/"}); err != nil {
		t.Fatal(err)
	}
	st.set(kindSnapshot, true)
	// The second entry triggers a snapshot, which fails: the op is applied
	// and logged, and Propose says so.
	err = l.Propose(ctx, DeclareQueue{Queue: Queue{Vhost: "/", Name: "q", Durable: true}})
	if err == nil || !errors.Is(err, errDisk) {
		t.Fatalf("failed snapshot: %v", err)
	}
	var q *Queue
	l.View(func(s *State) { q = s.Queue("/", "q") })
	if q == nil {
		t.Fatal("the op whose snapshot failed is not applied")
	}
	reopen(t, st, l, 2)

	// Removing the folded entries fails: the snapshot is written, and a
	// restart skips the entries it covers.
	st.set(kindSnapshot, false)
	st.dels = true
	if err := l.Propose(ctx, DeclareExchange{Exchange: Exchange{Vhost: "/", Name: "x", Type: "direct", Durable: true}}); err == nil {
		t.Fatal("a failed removal of folded entries is not reported")
	}
	entries, snap := logIndexes(t, st)
	if snap == 0 || len(entries) == 0 || entries[len(entries)-1] > snap {
		t.Fatalf("entries %v, snapshot of %d", entries, snap)
	}
	st.dels = false
	l2 := reopen(t, st, l, 2)
	if err := l2.Propose(ctx, Bind{Binding: toQueue("/", "x", "q", "k")}); err != nil {
		t.Fatal(err)
	}
	reopen(t, st, l2, 2)
}

func TestLocalConcurrentProposals(t *testing.T) {
	st := newMemory(t)
	l, err := OpenLocal(st, &recorder{}, 5)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Propose(ctx, AddVhost{Name: "/"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("q-%d-%d", w, i)
				if err := l.Propose(ctx, DeclareQueue{Queue: Queue{Vhost: "/", Name: name, Durable: i%2 == 0}}); err != nil {
					t.Error(err)
					return
				}
				l.View(func(s *State) {
					if s.Queue("/", name) == nil {
						t.Errorf("%s is not there after Propose", name)
					}
				})
			}
		}()
	}
	wg.Wait()
	reopen(t, st, l, 5)
}

func TestLocalProposeGivesUpWhenTheContextEnds(t *testing.T) {
	l, err := OpenLocal(newMemory(t), &recorder{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.turn <- struct{}{} // a proposal in progress
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Propose(ctx, AddVhost{Name: "/"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose with a done context: %v", err)
	}
	<-l.turn
	if err := l.Propose(context.Background(), AddVhost{Name: "/"}); err != nil {
		t.Fatal(err)
	}
}
