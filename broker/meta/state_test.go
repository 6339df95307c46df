package meta

import (
	"testing"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// Exclusive queues are not metadata, so the scripts cannot redeclare one;
// the broker checks them with CheckQueueEquivalent.

func TestCheckQueueEquivalentChecksExclusivityBeforeDurable(t *testing.T) {
	durable := Queue{Vhost: "/", Name: "q", Durable: true}
	transient := Queue{Vhost: "/", Name: "q"}
	locked := LockedQueue("/", "q").(*amqp.Error).Text
	for _, c := range []struct {
		name                        string
		curExclusive, wantExclusive bool
		want                        string
	}{
		{"exclusive redeclared shared", true, false, locked},
		{"shared redeclared exclusive", false, true, locked},
		{"same exclusivity", true, true, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"},
	} {
		err := CheckQueueEquivalent(durable, c.curExclusive, transient, c.wantExclusive)
		if got := errorText(err); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCheckQueueEquivalentNamesArgumentTypesAsRabbitMQ(t *testing.T) {
	cur := Queue{Vhost: "/", Name: "q"}
	for _, c := range []struct {
		arg  any
		want string
	}{
		{int8(1), "the value '1' of type 'byte'"},
		{uint8(1), "the value '1' of type 'unsignedbyte'"},
		{int16(1), "the value '1' of type 'short'"},
		{uint16(1), "the value '1' of type 'unsignedshort'"},
		{int32(1), "the value '1' of type 'signedint'"},
		{uint32(1), "the value '1' of type 'unsignedint'"},
		{int64(1), "the value '1' of type 'long'"},
		{1.5, "the value '1.5' of type 'double'"},
		{float32(1.5), "the value '1.5' of type 'float'"},
		{"1", "the value '1' of type 'longstr'"},
		{[]byte("1"), "the value '1' of type 'binary'"},
		{true, "the value 'true' of type 'bool'"},
	} {
		want := Queue{Vhost: "/", Name: "q", Args: amqp.Table{"x-max-length": c.arg}}
		err := CheckQueueEquivalent(cur, false, want, false)
		exp := "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received " + c.want + " but current is none"
		if got := errorText(err); got != exp {
			t.Errorf("%T: got %q, want %q", c.arg, got, exp)
		}
	}
}

func TestEquivalentArgsComparesWithinATypeClass(t *testing.T) {
	for _, c := range []struct {
		a, b any
		same bool
	}{
		{int8(5), int64(5), true},
		{uint32(5), int16(5), true},
		{int32(5), int32(6), false},
		{float32(1.5), 1.5, true},
		{int32(1), 1.0, false},
		{"a", "a", true},
		{"a", []byte("a"), false},
		{true, true, true},
		{true, int32(1), false},
		{amqp.Table{"k": int32(1)}, amqp.Table{"k": int32(1)}, true},
		{[]any{"a"}, []any{"b"}, false},
	} {
		if got := equivalentArgs(c.a, c.b); got != c.same {
			t.Errorf("equivalentArgs(%#v, %#v) = %v", c.a, c.b, got)
		}
	}
}

// TestAnswerFromTheLocalState lists which ops a node answers from its own
// state, without the log: puts it already holds, and puts refused for a
// reason no other node can lift; never a delete, never a miss.
func TestAnswerFromTheLocalState(t *testing.T) {
	s := NewState()
	setup := []Op{
		AddVhost{Name: "/"},
		PutUser{User: User{Name: "u", PasswordHash: "h", Tags: []string{"a"}}},
		DeclareQueue{Queue: Queue{Vhost: "/", Name: "q", Durable: true}},
		Bind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "amq.direct", Destination: exchange.Destination{Name: "q"}, Key: "k"}}},
	}
	for _, op := range setup {
		if err := s.Check(op); err != nil {
			t.Fatal(err)
		}
		s.Apply(op)
	}
	for _, c := range []struct {
		op      Op
		done    bool
		errCode uint16
	}{
		{DeclareQueue{Queue: Queue{Vhost: "/", Name: "q", Durable: true}}, true, 0},
		{DeclareQueue{Queue: Queue{Vhost: "/", Name: "q", Durable: false}}, true, amqp.PreconditionFailed},
		{DeclareQueue{Queue: Queue{Vhost: "/", Name: "new"}}, false, 0},
		{DeclareQueue{Queue: Queue{Vhost: "nowhere", Name: "q"}}, false, 0},
		{Bind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "amq.direct", Destination: exchange.Destination{Name: "q"}, Key: "k"}}}, true, 0},
		{Bind{Binding: Binding{Vhost: "/", Binding: exchange.Binding{Source: "missing", Destination: exchange.Destination{Name: "q"}, Key: "k"}}}, false, 0},
		{PutUser{User: User{Name: "u", PasswordHash: "h", Tags: []string{"a"}}}, true, 0},
		{PutUser{User: User{Name: "u", PasswordHash: "other"}}, false, 0},
		{PutUser{User: User{Name: "nobody"}}, false, 0},
		{AddVhost{Name: "/"}, true, 0},
		{DeleteQueue{Vhost: "/", Name: "q"}, false, 0},
		{DeleteQueue{Vhost: "/", Name: "absent"}, false, 0},
		{Batch{Ops: []Op{AddVhost{Name: "/"}, DeclareQueue{Queue: Queue{Vhost: "/", Name: "q", Durable: true}}}}, true, 0},
		{Batch{Ops: []Op{AddVhost{Name: "/"}, DeclareQueue{Queue: Queue{Vhost: "/", Name: "new"}}}}, false, 0},
	} {
		done, err := s.Answer(c.op)
		var code uint16
		if ae, ok := err.(*amqp.Error); ok {
			code = ae.Code
		} else if err != nil {
			t.Fatalf("%s: %v", c.op, err)
		}
		if done != c.done || code != c.errCode {
			t.Errorf("%s: answered %v with %v, want %v with code %d", c.op, done, err, c.done, c.errCode)
		}
	}
}
