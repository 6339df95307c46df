package exchange

import "github.com/warrenmq/warren/amqp"

// Router follows exchange-to-exchange bindings from one exchange and
// collects every queue reached, each once; cycles deliver once. It keeps
// scratch buffers between calls and is not safe for concurrent use (one per
// connection).
type Router struct {
	queues  []string
	set     map[string]struct{} // membership once queues grows large
	visited []*Exchange
	pending []*Exchange
	dests   []Destination
}

// Route returns the names of the queues a message reaches from start. The
// slice is valid until the next call. lookup resolves exchange names.
func (r *Router) Route(start *Exchange, lookup func(name string) *Exchange, routingKey string, headers amqp.Table) []string {
	r.queues = r.queues[:0]
	clear(r.set)
	r.visited = append(r.visited[:0], start)
	r.pending = append(r.pending[:0], start)
	for len(r.pending) > 0 {
		e := r.pending[len(r.pending)-1]
		r.pending = r.pending[:len(r.pending)-1]
		r.dests = e.Route(routingKey, headers, r.dests[:0])
		for _, d := range r.dests {
			if !d.IsExchange {
				r.addQueue(d.Name)
				continue
			}
			next := lookup(d.Name)
			if next != nil && !r.seen(next) {
				r.visited = append(r.visited, next)
				r.pending = append(r.pending, next)
			}
		}
	}
	clear(r.visited) // do not keep exchanges alive
	clear(r.pending[:cap(r.pending)])
	return r.queues
}

func (r *Router) seen(e *Exchange) bool {
	for _, v := range r.visited {
		if v == e {
			return true
		}
	}
	return false
}

// linearLimit is how many queues are deduplicated by a linear scan, which
// beats a map for the few queues a message usually reaches.
const linearLimit = 16

// addQueue appends name unless present.
func (r *Router) addQueue(name string) {
	if len(r.queues) < linearLimit {
		for _, q := range r.queues {
			if q == name {
				return
			}
		}
		r.queues = append(r.queues, name)
		return
	}
	if r.set == nil {
		r.set = make(map[string]struct{})
	}
	if len(r.set) == 0 {
		for _, q := range r.queues {
			r.set[q] = struct{}{}
		}
	}
	if _, ok := r.set[name]; ok {
		return
	}
	r.set[name] = struct{}{}
	r.queues = append(r.queues, name)
}
