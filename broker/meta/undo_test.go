package meta

import (
	"bytes"
	"testing"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

func toQueue(vhost, src, q, key string) Binding {
	return Binding{Vhost: vhost, Binding: exchange.Binding{Source: src, Destination: exchange.Destination{Name: q}, Key: key}}
}

func toExchange(vhost, src, dst, key string) Binding {
	return Binding{Vhost: vhost, Binding: exchange.Binding{Source: src, Destination: exchange.Destination{Name: dst, IsExchange: true}, Key: key}}
}

// mustApply checks and applies ops.
func mustApply(t testing.TB, s *State, ops ...Op) {
	t.Helper()
	for _, op := range ops {
		if err := s.Check(op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		s.Apply(op)
	}
}

// richOps build two vhosts with users, permissions, policies, durable,
// transient and auto-delete exchanges, queues and bindings of both kinds.
func richOps() []Op {
	var ops []Op
	for _, vh := range []string{"/", "v"} {
		ops = append(ops,
			AddVhost{Name: vh},
			PutPolicy{Policy: Policy{Vhost: vh, Name: "cap", Pattern: "^q", Definition: map[string]any{"max-length": 5.0}}},
			DeclareExchange{Exchange: Exchange{Vhost: vh, Name: "x", Type: "topic", Durable: true}},
			DeclareExchange{Exchange: Exchange{Vhost: vh, Name: "t", Type: "fanout"}},
			DeclareExchange{Exchange: Exchange{Vhost: vh, Name: "ad", Type: "direct", Durable: true, AutoDelete: true}},
			DeclareQueue{Queue: Queue{Vhost: vh, Name: "q", Durable: true, Args: amqp.Table{"x-message-ttl": int32(1000)}}},
			DeclareQueue{Queue: Queue{Vhost: vh, Name: "tq"}},
			Bind{Binding: toQueue(vh, "x", "q", "a.#")},
			Bind{Binding: toQueue(vh, "t", "q", "")},
			Bind{Binding: toQueue(vh, "ad", "q", "q")},
			Bind{Binding: toQueue(vh, "amq.direct", "tq", "tq")},
			Bind{Binding: toExchange(vh, "x", "t", "b.*")},
			Bind{Binding: toExchange(vh, "ad", "x", "")},
		)
	}
	return append(ops,
		PutUser{User: User{Name: "alice", PasswordHash: "h1", Tags: []string{"administrator"}}},
		PutUser{User: User{Name: "bob"}},
		SetPermission{Permission: Permission{User: "alice", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}},
		SetPermission{Permission: Permission{User: "alice", Vhost: "v", Configure: "", Write: ".*", Read: ".*"}},
		SetPermission{Permission: Permission{User: "bob", Vhost: "v", Configure: ".*", Write: ".*", Read: ".*"}},
	)
}

func richState(t testing.TB) *State {
	s := NewState()
	mustApply(t, s, richOps()...)
	return s
}

func TestUndoRestoresTheSnapshotBeforeTheOp(t *testing.T) {
	for _, op := range []Op{
		DeleteVhost{Name: "v"},
		DeleteUser{Name: "alice"},
		DeleteQueue{Vhost: "/", Name: "q"}, // its bindings, and the auto-delete ad with them
		DeleteExchange{Vhost: "/", Name: "x"},
		Unbind{Binding: toQueue("/", "ad", "q", "q")},
		Unbind{Binding: toExchange("/", "ad", "x", "")}, // ad keeps its binding to q
		PutUser{User: User{Name: "alice", PasswordHash: "h2"}},
		SetPermission{Permission: Permission{User: "bob", Vhost: "v", Configure: "^$", Write: "^$", Read: "^$"}},
		ClearPermission{User: "alice", Vhost: "/"},
		PutPolicy{Policy: Policy{Vhost: "v", Name: "cap", Pattern: ".*", ApplyTo: "queues", Definition: map[string]any{"max-length": 9.0}}},
		DeletePolicy{Vhost: "/", Name: "cap"},
		AddVhost{Name: "w"},
		DeclareQueue{Queue: Queue{Vhost: "v", Name: "new", Durable: true}},
		Bind{Binding: toQueue("v", "x", "tq", "k")},
		Batch{Ops: []Op{
			DeleteVhost{Name: "v"},
			AddVhost{Name: "v"},
			DeclareQueue{Queue: Queue{Vhost: "v", Name: "q"}},
			DeleteUser{Name: "bob"},
			DeleteExchange{Vhost: "/", Name: "t"},
		}},
	} {
		s := richState(t)
		before := Snapshot(s, false)
		if err := s.Check(op); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		cs := s.Apply(op)
		if len(cs) == 0 {
			t.Fatalf("%s made no change", op)
		}
		s.Undo(cs)
		if !bytes.Equal(Snapshot(s, false), before) {
			t.Errorf("%s: after Undo the state is\n%s", op, dumpState(s))
		}
		// The indexes came back too: the op does the same again.
		if again := s.Apply(op); renderChanges(again) != renderChanges(cs) {
			t.Errorf("%s after Undo made\n%s\nnot\n%s", op, renderChanges(again), renderChanges(cs))
		}
	}
}
