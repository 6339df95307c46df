package exchange

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp"
)

// Kind is an exchange type.
type Kind uint8

// The exchange types.
const (
	Direct Kind = iota + 1
	Fanout
	Topic
	Headers
)

// ParseKind parses "direct", "fanout", "topic" or "headers".
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "direct":
		return Direct, true
	case "fanout":
		return Fanout, true
	case "topic":
		return Topic, true
	case "headers":
		return Headers, true
	}
	return 0, false
}

// String returns the type's AMQP name.
func (k Kind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Fanout:
		return "fanout"
	case Topic:
		return "topic"
	case Headers:
		return "headers"
	}
	return "unknown"
}

// Destination is where a binding leads: a queue or, for exchange-to-exchange
// bindings, an exchange, by name.
type Destination struct {
	Name       string
	IsExchange bool
}

// Binding binds Source to Destination with a routing key and arguments.
type Binding struct {
	Source      string
	Destination Destination
	Key         string
	Args        amqp.Table
}

// identity is what makes two bindings the same: destination, key and
// arguments (compared by their type-aware encoding).
func (b Binding) identity() string {
	var buf bytes.Buffer
	if b.Destination.IsExchange {
		buf.WriteByte('e')
	} else {
		buf.WriteByte('q')
	}
	buf.WriteString(b.Destination.Name)
	buf.WriteByte(0)
	buf.WriteString(b.Key)
	buf.WriteByte(0)
	buf.Write(amqp.AppendTable(nil, b.Args))
	return buf.String()
}

// EqualTables reports whether two tables are equal in keys, types and
// values; nil and empty are equal.
func EqualTables(a, b amqp.Table) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return bytes.Equal(amqp.AppendTable(nil, a), amqp.AppendTable(nil, b))
}

// router is an immutable routing table of one exchange type.
type router interface {
	route(key string, headers amqp.Table, out []Destination) []Destination
	// with returns a new table that also has b (add) or no longer has b.
	with(b Binding, add bool) router
}

// Exchange is one exchange: its definition and bindings. Safe for
// concurrent use; Route takes no lock.
type Exchange struct {
	Name       string
	Kind       Kind
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       amqp.Table

	// PublishIn counts messages published to the exchange and PublishOut
	// the copies routed from it into queues; the broker counts, management
	// reads.
	PublishIn, PublishOut atomic.Uint64

	table atomic.Pointer[router]

	mu       sync.Mutex         // serialises changes
	bindings map[string]Binding // by identity
}

// New returns an exchange with no bindings.
func New(name string, kind Kind, durable, autoDelete, internal bool, args amqp.Table) *Exchange {
	e := &Exchange{Name: name, Kind: kind, Durable: durable, AutoDelete: autoDelete, Internal: internal,
		Args: args, bindings: map[string]Binding{}}
	var r router
	switch kind {
	case Fanout:
		r = fanoutTable{}
	case Topic:
		r = &topicNode{}
	case Headers:
		r = headersTable{}
	default:
		r = newDirectTable()
	}
	e.table.Store(&r)
	return e
}

// Bind adds a binding; it returns false if an identical one exists.
func (e *Exchange) Bind(b Binding) bool {
	b.Source = e.Name
	id := b.identity()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.bindings[id]; ok {
		return false
	}
	e.bindings[id] = b
	r := (*e.table.Load()).with(b, true)
	e.table.Store(&r)
	return true
}

// Unbind removes a binding; it returns false if there was none.
func (e *Exchange) Unbind(b Binding) bool {
	b.Source = e.Name
	id := b.identity()
	e.mu.Lock()
	defer e.mu.Unlock()
	old, ok := e.bindings[id]
	if !ok {
		return false
	}
	delete(e.bindings, id)
	r := (*e.table.Load()).with(old, false)
	e.table.Store(&r)
	return true
}

// HasBinding reports whether an identical binding exists.
func (e *Exchange) HasBinding(b Binding) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.bindings[b.identity()]
	return ok
}

// Bindings returns the exchange's bindings sorted by destination kind,
// name and key.
func (e *Exchange) Bindings() []Binding {
	e.mu.Lock()
	out := make([]Binding, 0, len(e.bindings))
	for _, b := range e.bindings {
		out = append(out, b)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Destination.IsExchange != b.Destination.IsExchange {
			return !a.Destination.IsExchange
		}
		if a.Destination.Name != b.Destination.Name {
			return a.Destination.Name < b.Destination.Name
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.identity() < b.identity()
	})
	return out
}

// BindingCount returns the number of bindings.
func (e *Exchange) BindingCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.bindings)
}

// RemoveDestination removes every binding to d and returns them.
func (e *Exchange) RemoveDestination(d Destination) []Binding {
	e.mu.Lock()
	defer e.mu.Unlock()
	var removed []Binding
	r := *e.table.Load()
	for id, b := range e.bindings {
		if b.Destination == d {
			delete(e.bindings, id)
			r = r.with(b, false)
			removed = append(removed, b)
		}
	}
	if len(removed) > 0 {
		e.table.Store(&r)
	}
	return removed
}

// Route appends to out the destinations a message with the routing key
// and headers reaches through this exchange's own bindings (one level) and
// returns it. It takes no lock and, for direct, fanout and topic, does not
// allocate when out has room.
func (e *Exchange) Route(routingKey string, headers amqp.Table, out []Destination) []Destination {
	return (*e.table.Load()).route(routingKey, headers, out)
}

// removeDest returns ds without one occurrence of d (a new slice).
func removeDest(ds []Destination, d Destination) []Destination {
	for i, x := range ds {
		if x == d {
			out := make([]Destination, 0, len(ds)-1)
			out = append(out, ds[:i]...)
			return append(out, ds[i+1:]...)
		}
	}
	return ds
}

// addDest returns ds with d appended (a new slice).
func addDest(ds []Destination, d Destination) []Destination {
	out := make([]Destination, 0, len(ds)+1)
	out = append(out, ds...)
	return append(out, d)
}
