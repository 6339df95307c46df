package exchange

import (
	"math"
	"strings"

	"github.com/warrenmq/warren/amqp"
)

// headersBinding is one binding of a headers exchange.
type headersBinding struct {
	dest  Destination
	args  amqp.Table
	any   bool // x-match any / any-with-x
	withX bool // x-match *-with-x: x- keys take part
}

// headersTable lists a headers exchange's bindings.
type headersTable []headersBinding

func (t headersTable) route(_ string, headers amqp.Table, out []Destination) []Destination {
	for i := range t {
		if t[i].matches(headers) {
			out = append(out, t[i].dest)
		}
	}
	return out
}

func (t headersTable) with(b Binding, add bool) router {
	if add {
		mode, _ := b.Args["x-match"].(string)
		hb := headersBinding{dest: b.Destination, args: b.Args,
			any: strings.HasPrefix(mode, "any"), withX: strings.HasSuffix(mode, "-with-x")}
		out := make(headersTable, 0, len(t)+1)
		return append(append(out, t...), hb)
	}
	for i, hb := range t {
		if hb.dest == b.Destination && EqualTables(hb.args, b.Args) {
			out := make(headersTable, 0, len(t)-1)
			out = append(out, t[:i]...)
			return append(out, t[i+1:]...)
		}
	}
	return t
}

// matches applies RabbitMQ's rules: binding arguments other than x-match
// (and other x- keys unless -with-x) are compared with the headers; a void
// argument matches presence; values match when of the same type class
// (integers with integers, floats with floats) and equal.
func (hb *headersBinding) matches(headers amqp.Table) bool {
	considered := 0
	for k, want := range hb.args {
		if k == "x-match" || (!hb.withX && strings.HasPrefix(k, "x-")) {
			continue
		}
		considered++
		got, present := headers[k]
		ok := present && (want == nil || valuesMatch(want, got))
		if hb.any && ok {
			return true
		}
		if !hb.any && !ok {
			return false
		}
	}
	if hb.any {
		return false
	}
	return true
}

// valuesMatch compares two field values as RabbitMQ's headers exchange does.
func valuesMatch(a, b any) bool {
	if ai, ok := amqp.IntValue(a); ok {
		bi, ok := amqp.IntValue(b)
		return ok && ai == bi
	}
	if af, ok := amqp.FloatValue(a); ok {
		bf, ok := amqp.FloatValue(b)
		return ok && (af == bf || math.IsNaN(af) && math.IsNaN(bf))
	}
	switch av := a.(type) {
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case []byte:
		bv, ok := b.([]byte)
		return ok && string(av) == string(bv)
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	}
	return EqualTables(amqp.Table{"v": a}, amqp.Table{"v": b})
}
