package broker

import (
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Exclusive queues belong to one connection on this node and go when it
// closes, so they are not metadata: they never enter the metadata log.
// They are checked with the same functions as shared queues, and their
// bindings live only in this node's binding tables.

// declareExclusive declares (or redeclares) an exclusive queue of owner,
// or refuses a declare that clashes with an exclusive queue.
func (v *Vhost) declareExclusive(s QueueSpec, owner *conn) (*localQueue, error) {
	want := meta.Queue{Vhost: v.name, Name: s.Name, Durable: s.Durable, AutoDelete: s.AutoDelete, Args: s.Args}
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur := v.localQueue(s.Name); cur != nil {
		if err := meta.CheckQueueEquivalent(cur.record(), cur.owner != nil, want, s.Exclusive); err != nil {
			return nil, err
		}
		cur.queue.Touch()
		return cur, nil
	}
	if err := meta.CheckNewQueue(want, s.ServerNamed); err != nil {
		return nil, err
	}
	// A shared queue of that name being declared right now may still
	// appear: createQueue finds this one and leaves the shared one to
	// dropExclusive. (Reading the metadata here would wait for a commit.)
	cfg, err := queue.ParseArguments(v.name, s.Name, s.Args)
	if err != nil {
		return nil, err
	}
	cfg.Name, cfg.Durable, cfg.Exclusive, cfg.AutoDelete, cfg.Args = s.Name, s.Durable, true, s.AutoDelete, s.Args
	q := v.newQueue(cfg)
	q.owner = owner
	v.setQueue(s.Name, q)
	if owner != nil {
		owner.addExclusive(q)
	}
	return q, nil
}

// dropExclusive deletes an exclusive queue with its bindings, returning
// how many messages it held. Auto-delete exchanges left without bindings
// go too, through the log.
func (v *Vhost) dropExclusive(q *localQueue) int {
	v.mu.Lock()
	if v.localQueue(q.Name()) != q {
		v.mu.Unlock()
		return 0
	}
	v.setQueue(q.Name(), nil)
	v.mu.Unlock()
	var emptied []string
	for _, x := range v.Exchanges() {
		if len(x.RemoveDestination(exchange.Destination{Name: q.Name()})) > 0 && x.AutoDelete && x.BindingCount() == 0 {
			emptied = append(emptied, x.Name)
		}
	}
	n := q.Delete()
	if q.owner != nil {
		q.owner.removeExclusive(q)
	}
	for _, name := range emptied {
		v.autoDeleteExchange(name)
	}
	var shared *meta.Queue // declared while this one held the name
	v.srv.meta.View(func(st *meta.State) { shared = st.Queue(v.name, q.Name()) })
	if shared != nil {
		v.createQueue(shared)
	}
	return n
}

// autoDeleteExchange deletes an auto-delete exchange that lost its last
// binding to an exclusive queue, unless it is the source of others.
func (v *Vhost) autoDeleteExchange(name string) {
	if err := v.srv.propose(meta.AutoDeleteExchange{Vhost: v.name, Name: name}); err != nil {
		v.srv.log.Error("auto-deleting an exchange failed", "vhost", v.name, "exchange", name, "err", err)
	}
}

// bindExclusive binds an exchange to an exclusive queue of this node.
func (v *Vhost) bindExclusive(b exchange.Binding) error {
	if err := v.checkLocalBinding(b); err != nil {
		return err
	}
	if src := v.Exchange(b.Source); src != nil {
		if err := meta.CheckBindingArgs(meta.Binding{Vhost: v.name, Binding: b}, src.Kind.String()); err != nil {
			return err
		}
		src.Bind(b)
	}
	return nil
}

// unbindExclusive removes a binding to an exclusive queue of this node.
func (v *Vhost) unbindExclusive(b exchange.Binding) error {
	if err := meta.CheckUnbind(meta.Binding{Vhost: v.name, Binding: b}); err != nil {
		return err
	}
	src := v.Exchange(b.Source)
	if src != nil && src.Unbind(b) && src.AutoDelete && src.BindingCount() == 0 {
		v.autoDeleteExchange(src.Name)
	}
	return nil
}

// checkLocalBinding checks the ends of a binding with this node's view.
func (v *Vhost) checkLocalBinding(b exchange.Binding) error {
	return meta.CheckBindingEnds(meta.Binding{Vhost: v.name, Binding: b},
		func(name string) bool { return v.findExchange(name) != nil },
		func(name string) bool { return v.Queue(name) != nil })
}
