package exchange

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/warrenmq/warren/amqp"
)

func q(name string) Destination { return Destination{Name: name} }

func routed(e *Exchange, key string, headers amqp.Table) []string {
	var names []string
	for _, d := range e.Route(key, headers, nil) {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	return names
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestTopicMatching(t *testing.T) {
	cases := []struct {
		binding string
		key     string
		match   bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.c", false},
		{"a.#", "a", true},
		{"a.#", "a.b.c", true},
		{"#", "", true},
		{"#", "anything.at.all", true},
		{"#.#", "a.b", true},
		{"a.#.b", "a.b", true},
		{"a.#.b", "a.x.y.b", true},
		{"a.#.b", "a.x.y.c", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{"*", "", false},
		{"", "", true},
		{"", "a", false},
		{"a..b", "a..b", true},
		{"a.*.b", "a..b", true},
		{"a.", "a.", true},
		{"a.*", "a.", true},
		{"#.end", "end", true},
		{"x.#", "x", true},
		{"*.#", "", false},
		{"*.#", "a", true},
		{"a.b", "a.b.c", false},
	}
	for _, tc := range cases {
		e := New("t", Topic, false, false, false, nil)
		e.Bind(Binding{Destination: q("q"), Key: tc.binding})
		if got := len(e.Route(tc.key, nil, nil)) > 0; got != tc.match {
			t.Errorf("binding %q, key %q: match=%v, want %v", tc.binding, tc.key, got, tc.match)
		}
	}
}

func TestHeadersMatching(t *testing.T) {
	cases := []struct {
		name    string
		args    amqp.Table
		headers amqp.Table
		match   bool
	}{
		{"all matches", amqp.Table{"x-match": "all", "a": "1", "b": int32(2)}, amqp.Table{"a": "1", "b": int32(2), "c": "x"}, true},
		{"all misses one", amqp.Table{"x-match": "all", "a": "1", "b": int32(2)}, amqp.Table{"a": "1"}, false},
		{"default is all", amqp.Table{"a": "1", "b": "2"}, amqp.Table{"a": "1"}, false},
		{"any matches one", amqp.Table{"x-match": "any", "a": "1", "b": "2"}, amqp.Table{"b": "2"}, true},
		{"any matches none", amqp.Table{"x-match": "any", "a": "1"}, amqp.Table{"a": "2"}, false},
		{"void matches presence", amqp.Table{"a": nil}, amqp.Table{"a": "whatever"}, true},
		{"void needs presence", amqp.Table{"a": nil}, amqp.Table{"b": "x"}, false},
		{"integers of different widths", amqp.Table{"n": int32(5)}, amqp.Table{"n": int64(5)}, true},
		{"string is not an integer", amqp.Table{"n": "5"}, amqp.Table{"n": int64(5)}, false},
		{"x- keys ignored", amqp.Table{"x-match": "all", "x-custom": "1"}, amqp.Table{}, true},
		{"x- keys count with all-with-x", amqp.Table{"x-match": "all-with-x", "x-custom": "1"}, amqp.Table{}, false},
		{"any-with-x matches an x- key", amqp.Table{"x-match": "any-with-x", "x-custom": "1"}, amqp.Table{"x-custom": "1"}, true},
		{"no headers, all with no args", amqp.Table{"x-match": "all"}, nil, true},
		{"no headers, any", amqp.Table{"x-match": "any", "a": "1"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := New("h", Headers, false, false, false, nil)
			e.Bind(Binding{Destination: q("q"), Args: tc.args})
			if got := len(e.Route("", tc.headers, nil)) > 0; got != tc.match {
				t.Fatalf("match=%v, want %v", got, tc.match)
			}
		})
	}
}

func TestDirectAndFanout(t *testing.T) {
	d := New("d", Direct, false, false, false, nil)
	d.Bind(Binding{Destination: q("q1"), Key: "k"})
	d.Bind(Binding{Destination: q("q2"), Key: "k"})
	d.Bind(Binding{Destination: q("q3"), Key: "other"})
	if got := routed(d, "k", nil); !equal(got, []string{"q1", "q2"}) {
		t.Fatalf("direct routed to %v", got)
	}
	f := New("f", Fanout, false, false, false, nil)
	f.Bind(Binding{Destination: q("q1"), Key: "ignored"})
	f.Bind(Binding{Destination: q("q2")})
	if got := routed(f, "any", nil); !equal(got, []string{"q1", "q2"}) {
		t.Fatalf("fanout routed to %v", got)
	}
}

func TestBindUnbindIdempotence(t *testing.T) {
	for _, kind := range []Kind{Direct, Fanout, Topic, Headers} {
		e := New("x", kind, false, false, false, nil)
		b := Binding{Destination: q("q"), Key: "a.b", Args: amqp.Table{"x-match": "any", "k": "v"}}
		if !e.Bind(b) || e.Bind(b) {
			t.Fatalf("%v: a second identical bind was added", kind)
		}
		if !e.HasBinding(b) || e.BindingCount() != 1 {
			t.Fatalf("%v: binding not recorded once", kind)
		}
		other := b
		other.Args = amqp.Table{"x-match": "any", "k": "w"}
		if !e.Bind(other) || e.BindingCount() != 2 {
			t.Fatalf("%v: a binding with other arguments is distinct", kind)
		}
		if !e.Unbind(b) || e.Unbind(b) {
			t.Fatalf("%v: unbind not idempotent", kind)
		}
		if removed := e.RemoveDestination(q("q")); len(removed) != 1 || e.BindingCount() != 0 {
			t.Fatalf("%v: RemoveDestination removed %d", kind, len(removed))
		}
		if len(e.Route("a.b", amqp.Table{"k": "v"}, nil)) != 0 {
			t.Fatalf("%v: routes after every binding went", kind)
		}
	}
}

func TestRouterFollowsExchangesAndDeliversOnceThroughCycles(t *testing.T) {
	a := New("a", Fanout, false, false, false, nil)
	b := New("b", Fanout, false, false, false, nil)
	c := New("c", Topic, false, false, false, nil)
	a.Bind(Binding{Destination: Destination{Name: "b", IsExchange: true}})
	b.Bind(Binding{Destination: Destination{Name: "a", IsExchange: true}})
	b.Bind(Binding{Destination: Destination{Name: "c", IsExchange: true}})
	a.Bind(Binding{Destination: q("q1")})
	b.Bind(Binding{Destination: q("q1")})
	c.Bind(Binding{Destination: q("q2"), Key: "k.#"})
	c.Bind(Binding{Destination: q("q3"), Key: "x"})
	ex := map[string]*Exchange{"a": a, "b": b, "c": c}
	var r Router
	got := append([]string{}, r.Route(a, func(n string) *Exchange { return ex[n] }, nil, []string{"k.1"}, nil)...)
	sort.Strings(got)
	if !equal(got, []string{"q1", "q2"}) {
		t.Fatalf("routed to %v", got)
	}
}

func TestRouterMatchesEveryKeyAtEveryExchange(t *testing.T) {
	d := New("d", Direct, false, false, false, nil)
	tp := New("t", Topic, false, false, false, nil)
	d.Bind(Binding{Destination: Destination{Name: "t", IsExchange: true}, Key: "k1"})
	tp.Bind(Binding{Destination: q("q"), Key: "k2"})
	ex := map[string]*Exchange{"d": d, "t": tp}
	var r Router
	if got := r.Route(d, func(n string) *Exchange { return ex[n] }, nil, []string{"", "k1", "k2"}, nil); !equal(got, []string{"q"}) {
		t.Fatalf("routed to %v, want [q]: the topic exchange matches k2 of the keys the direct one matched with k1", got)
	}
}

func TestRouterTakesTheAlternateOnlyWhenNoBindingMatches(t *testing.T) {
	x := New("x", Direct, false, false, false, nil)
	y := New("y", Fanout, false, false, false, nil) // no bindings
	ae := New("ae", Fanout, false, false, false, nil)
	x.Bind(Binding{Destination: Destination{Name: "y", IsExchange: true}, Key: "k"})
	ae.Bind(Binding{Destination: q("unroutable")})
	ex := map[string]*Exchange{"x": x, "y": y, "ae": ae}
	lookup := func(n string) *Exchange { return ex[n] }
	alternate := func(e *Exchange) *Exchange {
		if e == x {
			return ae
		}
		return nil
	}
	var r Router
	if got := r.Route(x, lookup, alternate, []string{"k"}, nil); len(got) != 0 {
		t.Fatalf("a binding of x matched, yet routed to %v", got)
	}
	if got := r.Route(x, lookup, alternate, []string{"other"}, nil); !equal(got, []string{"unroutable"}) {
		t.Fatalf("no binding of x matched: routed to %v, want its alternate's queue", got)
	}
}

func TestRouterDeduplicatesManyQueues(t *testing.T) {
	e := New("f", Fanout, false, false, false, nil)
	for i := 0; i < 100; i++ {
		e.Bind(Binding{Destination: q(fmt.Sprintf("q%d", i))})
		e.Bind(Binding{Destination: q(fmt.Sprintf("q%d", i)), Key: "again"})
	}
	var r Router
	if got := r.Route(e, func(string) *Exchange { return nil }, nil, []string{""}, nil); len(got) != 100 {
		t.Fatalf("%d queues, want 100", len(got))
	}
}

func TestConcurrentRouteDuringBindUnbind(t *testing.T) {
	e := New("t", Topic, false, false, false, nil)
	e.Bind(Binding{Destination: q("stable"), Key: "a.#"})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			b := Binding{Destination: q(fmt.Sprintf("q%d", i%50)), Key: fmt.Sprintf("a.%d.*", i%7)}
			e.Bind(b)
			e.Unbind(b)
		}
	}()
	go func() {
		defer wg.Done()
		var out []Destination
		for i := 0; i < 20000; i++ {
			out = e.Route("a.3.x", nil, out[:0])
			found := false
			for _, d := range out {
				found = found || d.Name == "stable"
			}
			if !found {
				t.Error("a concurrent bind hid an existing binding")
				return
			}
		}
	}()
	wg.Wait()
}

func TestEqualTables(t *testing.T) {
	if !EqualTables(nil, amqp.Table{}) {
		t.Error("nil and empty differ")
	}
	if EqualTables(amqp.Table{"a": int32(1)}, amqp.Table{"a": int64(1)}) {
		t.Error("types are ignored")
	}
	if !EqualTables(amqp.Table{"a": "x", "b": []any{int8(1)}}, amqp.Table{"b": []any{int8(1)}, "a": "x"}) {
		t.Error("equal tables differ")
	}
}
