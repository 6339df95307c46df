package meta

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// richTable has a value of every field type the AMQP codec knows.
func richTable() amqp.Table {
	return amqp.Table{
		"bool": true, "byte": int8(-8), "ubyte": uint8(8), "short": int16(-16), "ushort": uint16(16),
		"int": int32(-32), "uint": uint32(32), "long": int64(-64), "float": float32(1.5), "double": 2.25,
		"decimal": amqp.Decimal{Scale: 2, Value: 1234}, "string": "text", "binary": []byte{0, 1, 2},
		"time":  time.Unix(1700000000, 0).UTC(),
		"array": []any{int32(1), "two", amqp.Table{"three": int64(3)}},
		"table": amqp.Table{"nested": amqp.Table{"deep": "yes"}},
		"void":  nil,
	}
}

// everyOp has every op type, with arguments where an op takes them.
func everyOp() []Op {
	q := exchange.Destination{Name: "q"}
	e := exchange.Destination{Name: "e", IsExchange: true}
	ops := []Op{
		AddVhost{Name: "/"},
		DeleteVhost{Name: "v"},
		PutUser{User: User{Name: "u", PasswordHash: "hash", Tags: []string{"administrator", "management"}}},
		PutUser{User: User{Name: "nobody"}},
		DeleteUser{Name: "u"},
		SetPermission{Permission: Permission{User: "u", Vhost: "/", Configure: "^c", Write: "^w", Read: ".*"}},
		ClearPermission{User: "u", Vhost: "/"},
		PutPolicy{Policy: Policy{Vhost: "/", Name: "p", Pattern: "^q", ApplyTo: "queues", Priority: -3,
			Definition: map[string]any{"max-length": 10.0, "overflow": "reject-publish", "ha-params": []any{"a", 1.0},
				"federation-upstream": map[string]any{"uri": "amqp://", "on": true}}}},
		DeletePolicy{Vhost: "/", Name: "p"},
		DeclareExchange{Exchange: Exchange{Vhost: "/", Name: "x", Type: "topic", Durable: true, AutoDelete: true, Internal: true, Args: richTable()}},
		DeclareExchange{Exchange: Exchange{Vhost: "v", Name: "plain", Type: "fanout", Args: amqp.Table{}}},
		DeleteExchange{Vhost: "/", Name: "x", IfUnused: true},
		DeleteExchange{Vhost: "/", Name: "x"},
		DeclareQueue{Queue: Queue{Vhost: "/", Name: "q", Durable: true, AutoDelete: true, Args: richTable()}},
		DeclareQueue{Queue: Queue{Vhost: "/", Name: "amq.gen-1", Args: amqp.Table{}}, ServerNamed: true},
		DeclareQueue{Queue: Queue{Vhost: "/", Name: "homed", Args: amqp.Table{}, Node: "warren@a"}},
		DeclareQueue{Queue: Queue{Vhost: "/", Name: "amq.gen-2", Args: amqp.Table{}, Node: "warren@b"}, ServerNamed: true},
		DeleteQueue{Vhost: "/", Name: "q"},
		Bind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "x", Destination: q, Key: "a.#", Args: richTable()}}},
		Bind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "x", Destination: e, Key: "", Args: amqp.Table{}}}},
		Unbind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "x", Destination: e, Key: "k", Args: amqp.Table{"x-match": "any"}}}},
		Unbind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "x", Destination: q, Key: "k", Args: amqp.Table{}}}},
		Batch{Ops: []Op{}},
	}
	return append(ops, Batch{Ops: append([]Op(nil), ops...)})
}

func TestOpEncodingRoundTripsEveryOp(t *testing.T) {
	seen := map[opCode]bool{}
	for _, op := range everyOp() {
		seen[op.opCode()] = true
		enc := AppendOp(nil, op)
		got, err := DecodeOp(enc)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		if !reflect.DeepEqual(got, op) {
			t.Errorf("%s: decoded as\n%#v\nwant\n%#v", op, got, op)
		}
		if re := AppendOp(nil, got); !bytes.Equal(re, enc) {
			t.Errorf("%s: encodes differently after a round trip", op)
		}
		// Appending to a buffer leaves what was there.
		if buf := AppendOp([]byte("prefix"), op); !bytes.Equal(buf[6:], enc) || string(buf[:6]) != "prefix" {
			t.Errorf("%s: AppendOp does not append", op)
		}
		// Every strict prefix is refused, never misread.
		for n := 0; n < len(enc); n++ {
			if _, err := DecodeOp(enc[:n]); err == nil {
				t.Errorf("%s: decoded from %d of %d bytes", op, n, len(enc))
			}
		}
		if _, err := DecodeOp(append(enc[:len(enc):len(enc)], 0)); err == nil {
			t.Errorf("%s: decoded with a trailing byte", op)
		}
	}
	for c := opAddVhost; c <= opBatch; c++ {
		if !seen[c] {
			t.Errorf("op code %d is not in everyOp", c)
		}
	}
}

func TestDecodeOpRefusesUnknownCode(t *testing.T) {
	for _, b := range [][]byte{nil, {0}, {byte(opBatch) + 1}, {0xff}} {
		if op, err := DecodeOp(b); err == nil {
			t.Errorf("%x decoded as %v", b, op)
		}
	}
}

// everyRecord has a record of every kind, in the order of State.Each.
func everyRecord() []Record {
	return []Record{
		&Vhost{Name: "/"},
		&User{Name: "u", PasswordHash: "h", Tags: []string{"t"}},
		&Permission{User: "u", Vhost: "/", Configure: ".*", Write: "", Read: "^r"},
		&Policy{Vhost: "/", Name: "p", Pattern: ".*", ApplyTo: "all", Priority: 7, Definition: map[string]any{"message-ttl": 1000.0}},
		&Exchange{Vhost: "/", Name: "x", Type: "headers", Durable: true, Args: richTable()},
		&Queue{Vhost: "/", Name: "q", Durable: true, Args: amqp.Table{"x-message-ttl": int32(5)}},
		&Queue{Vhost: "/", Name: "r", Args: amqp.Table{}, Node: "warren@a"},
		&Binding{Vhost: "/", Binding: exchange.Binding{Source: "x", Destination: exchange.Destination{Name: "y", IsExchange: true}, Args: amqp.Table{}}},
		&Binding{Vhost: "/", Binding: exchange.Binding{Source: "x", Destination: exchange.Destination{Name: "q"}, Key: "k", Args: amqp.Table{"x-match": "all"}}},
	}
}

func TestChangesEncodingRoundTrips(t *testing.T) {
	var cs []Change
	for i, r := range everyRecord() {
		cs = append(cs, Change{Record: r, Durable: true}, Change{Delete: true, Record: r, Durable: i%2 == 0})
	}
	enc := AppendChanges(nil, cs)
	got, err := DecodeChanges(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(cs) {
		t.Fatalf("decoded %d changes, want %d", len(got), len(cs))
	}
	for i := range cs {
		want := Change{Delete: cs[i].Delete, Record: cs[i].Record} // the Durable flag is not encoded
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("change %d: got %#v, want %#v", i, got[i], want)
		}
	}
	if re := AppendChanges(nil, got); !bytes.Equal(re, enc) {
		t.Error("changes encode differently after a round trip")
	}
	if got, err := DecodeChanges(AppendChanges(nil, nil)); err != nil || len(got) != 0 {
		t.Errorf("no changes: %v, %v", got, err)
	}
	for n := 0; n < len(enc); n++ {
		if _, err := DecodeChanges(enc[:n]); err == nil {
			t.Errorf("decoded from %d of %d bytes", n, len(enc))
		}
	}
	bad := append([]byte{codecVersion + 1}, enc[1:]...)
	if _, err := DecodeChanges(bad); err == nil {
		t.Error("decoded an unknown version")
	}
}

func TestSnapshotRestoreRoundTrips(t *testing.T) {
	s := NewState()
	for _, r := range everyRecord() {
		if err := s.load(r); err != nil {
			t.Fatal(err)
		}
	}
	snap := Snapshot(s, false)
	r, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Snapshot(r, false), snap) {
		t.Error("Snapshot(Restore(Snapshot)) differs")
	}
	var got []Record
	r.Each(func(rec Record) { got = append(got, rec) })
	if want := everyRecord(); !reflect.DeepEqual(got, want) {
		for i := range want {
			if i >= len(got) || !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("restored record %d: %+v, want %+v", i, got[min(i, len(got)-1)], want[i])
			}
		}
	}
	if e, err := Restore(nil); err != nil || len(Snapshot(e, false)) != 2 {
		t.Errorf("empty snapshot: %v", err)
	}
	// A record whose vhost is not there is refused.
	for _, r := range []Record{&Queue{Vhost: "v", Name: "q"}, &Exchange{Vhost: "", Name: "x", Type: "direct"}} {
		orphan := appendRecord([]byte{codecVersion, 1}, r)
		if _, err := Restore(orphan); err == nil {
			t.Errorf("restored %s %q of a missing vhost", r.Kind(), r.ID())
		}
	}
	if _, err := Restore(snap[:1]); err == nil {
		t.Error("restored a snapshot without its record count")
	}
	if _, err := Restore(append(snap[:len(snap):len(snap)], 0)); err == nil {
		t.Error("restored a snapshot with a trailing byte")
	}
}

// TestVersion1StillDecodes: change lists and snapshots written before
// queues had a home node (version 1, no node after a queue) decode, their
// queues without a home; ops of that time (a flags byte of 0 or 1 after
// the queue) too.
func TestVersion1StillDecodes(t *testing.T) {
	q := &Queue{Vhost: "/", Name: "q", Durable: true, Args: amqp.Table{"x-max-length": int32(3)}}
	v1 := []byte{1, 2} // version 1, two records
	v1 = appendRecord(v1, &Vhost{Name: "/"})
	v1 = append(v1, byte(KindQueue))
	v1 = appendQueue(v1, q)
	s, err := Restore(v1)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Queue("/", "q"); got == nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("restored %+v, want %+v", got, q)
	}
	changes := []byte{1, 1, 0, byte(KindQueue)}
	changes = appendQueue(changes, q)
	cs, err := DecodeChanges(changes)
	if err != nil || len(cs) != 1 || !reflect.DeepEqual(cs[0].Record, q) {
		t.Fatalf("decoded %+v, %v", cs, err)
	}
	for _, named := range []bool{false, true} {
		op := append(appendQueue([]byte{byte(opDeclareQueue)}, q), map[bool]byte{false: 0, true: 1}[named])
		got, err := DecodeOp(op)
		if want := (DeclareQueue{Queue: *q, ServerNamed: named}); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("decoded %+v, %v; want %+v", got, err, want)
		}
	}
	bad := append(appendQueue([]byte{byte(opDeclareQueue)}, q), 4)
	if _, err := DecodeOp(bad); err == nil {
		t.Error("decoded a declare with unknown flags")
	}
}
