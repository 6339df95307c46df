package meta

import (
	"bytes"
	"testing"
)

// The decoders read what the store and (in a cluster) the network give
// them: they must refuse bad input with an error, never panic, and what
// they accept must encode back to bytes that decode to the same value.

func FuzzDecodeOp(f *testing.F) {
	for _, op := range everyOp() {
		if _, isBatch := op.(Batch); !isBatch {
			f.Add(AppendOp(nil, op))
		}
	}
	f.Add(AppendOp(nil, Batch{Ops: []Op{AddVhost{Name: "v"}, DeclareQueue{Queue: Queue{Vhost: "v", Name: "q"}}, Batch{}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOp(b)
		if err != nil {
			return
		}
		enc := AppendOp(nil, op)
		again, err := DecodeOp(enc)
		if err != nil {
			t.Fatalf("%s: re-encoded op does not decode: %v", op, err)
		}
		if re := AppendOp(nil, again); !bytes.Equal(re, enc) {
			t.Fatalf("%s: encoding is not stable", op)
		}
		// Checking a decoded op must not panic either.
		s := richState(t)
		if s.Check(op) == nil {
			cs := s.Apply(op)
			s.Undo(cs)
		}
	})
}

func FuzzRestore(f *testing.F) {
	s := NewState()
	for _, r := range everyRecord() {
		if err := s.load(r); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(Snapshot(s, false))
	f.Add(Snapshot(richState(f), false))
	f.Add(Snapshot(richState(f), true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Restore(b)
		if err != nil {
			return
		}
		for _, durableOnly := range []bool{false, true} {
			snap := Snapshot(s, durableOnly)
			s2, err := Restore(snap)
			if err != nil {
				t.Fatalf("a snapshot of a restored state does not restore: %v", err)
			}
			if !bytes.Equal(Snapshot(s2, durableOnly), snap) {
				t.Fatalf("Snapshot(Restore(Snapshot)) differs (durable only: %v)", durableOnly)
			}
		}
		// Cascades on whatever the snapshot held must not panic, and undo.
		before := Snapshot(s, false)
		var vhosts []string
		s.Each(func(r Record) {
			if v, ok := r.(*Vhost); ok {
				vhosts = append(vhosts, v.Name)
			}
		})
		for _, name := range vhosts {
			op := DeleteVhost{Name: name}
			if s.Check(op) == nil {
				s.Undo(s.Apply(op))
			}
		}
		if !bytes.Equal(Snapshot(s, false), before) {
			t.Fatal("deleting and undoing the vhosts changed the state")
		}
	})
}

func FuzzDecodeChanges(f *testing.F) {
	// Small seeds, one a record kind: the fuzzer minimises every new input
	// it finds, which takes long for large ones.
	for _, r := range everyRecord() {
		f.Add(AppendChanges(nil, []Change{{Record: r}, {Delete: true, Record: r}}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := DecodeChanges(b)
		if err != nil {
			return
		}
		enc := AppendChanges(nil, cs)
		again, err := DecodeChanges(enc)
		if err != nil {
			t.Fatalf("re-encoded changes do not decode: %v", err)
		}
		if !bytes.Equal(AppendChanges(nil, again), enc) {
			t.Fatal("encoding is not stable")
		}
		// Replaying them on a state must not panic.
		s := richState(t)
		_ = s.Replay(cs)
	})
}
