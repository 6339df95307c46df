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

// Route returns the names of the queues a message with routing keys
// (its routing key, then those of its CC and BCC headers) and headers
// reaches from start, as RabbitMQ routes it: every exchange on the way,
// the first and those reached through exchange-to-exchange bindings,
// matches its bindings against all the keys; an exchange none of whose
// bindings match passes the message to its alternate exchange, which
// alternate (may be nil) returns; no exchange is visited twice. The slice
// is valid until the next call. lookup resolves exchange names.
func (r *Router) Route(start *Exchange, lookup func(name string) *Exchange, alternate func(*Exchange) *Exchange,
	keys []string, headers amqp.Table) []string {
	r.queues = r.queues[:0]
	clear(r.set)
	r.visited = append(r.visited[:0], start)
	r.pending = append(r.pending[:0], start)
	for len(r.pending) > 0 {
		e := r.pending[len(r.pending)-1]
		r.pending = r.pending[:len(r.pending)-1]
		r.dests = r.dests[:0]
		if e.Kind == Fanout || e.Kind == Headers {
			r.dests = e.Route("", headers, r.dests) // the keys do not matter
		} else {
			for _, k := range keys {
				r.dests = e.Route(k, headers, r.dests)
			}
		}
		if len(r.dests) == 0 && alternate != nil {
			if ae := alternate(e); ae != nil {
				r.follow(ae)
			}
			continue
		}
		for _, d := range r.dests {
			if !d.IsExchange {
				r.addQueue(d.Name)
			} else if next := lookup(d.Name); next != nil {
				r.follow(next)
			}
		}
	}
	clear(r.visited) // do not keep exchanges alive
	clear(r.pending[:cap(r.pending)])
	return r.queues
}

// follow queues e for routing unless it was visited.
func (r *Router) follow(e *Exchange) {
	if !r.seen(e) {
		r.visited = append(r.visited, e)
		r.pending = append(r.pending, e)
	}
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
