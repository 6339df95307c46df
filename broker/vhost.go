package broker

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Vhost is a virtual host: its exchanges and queues. Routing reads the
// exchange map through an atomic pointer to an immutable copy and the
// queues through a sync.Map, so it takes no lock; changes are serialised
// by mu.
type Vhost struct {
	name string
	srv  *Server

	mu        sync.Mutex // guards changes of the queue names (shared and exclusive); never held across I/O
	exchanges atomic.Pointer[map[string]*exchange.Exchange]
	queues    sync.Map // name -> QueueHandle (*localQueue, or a RemoteQueue); lock-free reads, O(1) declares and deletes
	deleted   atomic.Bool
	retired   Counters // message counters of closed connections
	policies  atomic.Pointer[[]activePolicy]
}

func newVhost(srv *Server, name string) *Vhost {
	v := &Vhost{name: name, srv: srv}
	ex := map[string]*exchange.Exchange{}
	for _, p := range meta.Predeclared {
		kind, _ := exchange.ParseKind(p.Type)
		ex[p.Name] = exchange.New(p.Name, kind, true, false, false, nil)
	}
	v.exchanges.Store(&ex)
	return v
}

// Name returns the vhost's name.
func (v *Vhost) Name() string { return v.name }

// Exchange returns the named exchange, or nil.
func (v *Vhost) Exchange(name string) *exchange.Exchange {
	return (*v.exchanges.Load())[name]
}

// Queue returns the named queue (on this node or, in a cluster, on
// another), or nil.
func (v *Vhost) Queue(name string) QueueHandle { return v.queue(name) }

// queue returns the named queue's handle, or nil.
func (v *Vhost) queue(name string) QueueHandle {
	q, _ := v.queues.Load(name)
	h, _ := q.(QueueHandle)
	return h
}

// localQueue returns the named queue if it lives on this node, or nil.
func (v *Vhost) localQueue(name string) *localQueue {
	q, _ := v.queues.Load(name)
	qq, _ := q.(*localQueue)
	return qq
}

// ownerOf returns the connection that owns an exclusive queue, or nil.
func ownerOf(q QueueHandle) *conn {
	if lq, ok := q.(*localQueue); ok {
		return lq.owner
	}
	return nil
}

// Exchanges returns every exchange of the vhost (the map must not be modified).
func (v *Vhost) Exchanges() map[string]*exchange.Exchange { return *v.exchanges.Load() }

// Queues returns a snapshot of the vhost's queues.
func (v *Vhost) Queues() map[string]QueueHandle {
	out := map[string]QueueHandle{}
	v.queues.Range(func(k, q any) bool {
		out[k.(string)] = q.(QueueHandle)
		return true
	})
	return out
}

// localQueues returns a snapshot of the vhost's queues on this node.
func (v *Vhost) localQueues() []*localQueue {
	var out []*localQueue
	v.queues.Range(func(_, q any) bool {
		if lq, ok := q.(*localQueue); ok {
			out = append(out, lq)
		}
		return true
	})
	return out
}

func (v *Vhost) setExchange(name string, e *exchange.Exchange) {
	old := *v.exchanges.Load()
	m := make(map[string]*exchange.Exchange, len(old)+1)
	for k, x := range old {
		m[k] = x
	}
	if e == nil {
		delete(m, name)
	} else {
		m[name] = e
	}
	v.exchanges.Store(&m)
}

func (v *Vhost) setQueue(name string, q QueueHandle) {
	if q == nil {
		v.queues.Delete(name)
	} else {
		v.queues.Store(name, q)
	}
}

func (v *Vhost) notFoundExchange(name string) *amqp.Error {
	return amqp.Errorf(amqp.NotFound, "no exchange '%s' in vhost '%s'", name, v.name)
}

func (v *Vhost) notFoundQueue(name string) *amqp.Error {
	return amqp.Errorf(amqp.NotFound, "no queue '%s' in vhost '%s'", name, v.name)
}

// ExchangeSpec is what exchange.declare asks for.
type ExchangeSpec struct {
	Name                          string
	Kind                          string
	Durable, AutoDelete, Internal bool
	Args                          amqp.Table
}

// DeclareExchange creates an exchange or checks that an existing one is
// equivalent; passive only checks that it exists.
func (v *Vhost) DeclareExchange(s ExchangeSpec, passive bool) (*exchange.Exchange, error) {
	if passive {
		if s.Name == "" {
			return nil, amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
		}
		if e := v.findExchange(s.Name); e != nil {
			return e, nil
		}
		return nil, v.notFoundExchange(s.Name)
	}
	err := v.srv.propose(meta.DeclareExchange{Exchange: meta.Exchange{Vhost: v.name, Name: s.Name, Type: s.Kind,
		Durable: s.Durable, AutoDelete: s.AutoDelete, Internal: s.Internal, Args: s.Args}})
	if err != nil {
		return nil, err
	}
	if e := v.Exchange(s.Name); e != nil {
		return e, nil
	}
	return nil, v.notFoundExchange(s.Name) // deleted again meanwhile
}

// DeleteExchange deletes an exchange; deleting a missing one succeeds.
func (v *Vhost) DeleteExchange(name string, ifUnused bool) error {
	if ifUnused {
		// Bindings to exclusive queues are not metadata: check them here.
		if e := v.Exchange(name); e != nil && e.BindingCount() > 0 {
			return amqp.Errorf(amqp.PreconditionFailed, "exchange '%s' in vhost '%s' in use", name, v.name)
		}
	}
	return v.srv.propose(meta.DeleteExchange{Vhost: v.name, Name: name, IfUnused: ifUnused})
}

// QueueSpec is what queue.declare asks for.
type QueueSpec struct {
	Name                           string
	Durable, Exclusive, AutoDelete bool
	Args                           amqp.Table
	// ServerNamed marks a name the broker generated (amq.gen-…), which
	// may use the reserved prefix.
	ServerNamed bool
}

// DeclareQueue creates a shared queue or checks an existing one; passive
// only checks that it exists. Exclusive queues are declared on a
// connection (queue.declare), not here.
func (v *Vhost) DeclareQueue(s QueueSpec, passive bool) (QueueHandle, error) {
	if s.Exclusive {
		return nil, amqp.Errorf(amqp.PreconditionFailed, "exclusive queues are declared on a connection")
	}
	q, err := v.declareQueue(s, passive, nil)
	if err != nil {
		return nil, err
	}
	return q, nil
}

// declareQueue declares a queue for owner (nil: the management API). A
// queue whose home node cannot be reached is refused with RabbitMQ's 404.
func (v *Vhost) declareQueue(s QueueSpec, passive bool, owner *conn) (QueueHandle, error) {
	existing := v.queue(s.Name)
	if o := ownerOf(existing); o != nil && o != owner {
		return nil, v.lockedQueue(s.Name)
	}
	if passive {
		if existing == nil {
			if existing = v.findQueue(s.Name); existing == nil {
				return nil, v.notFoundQueue(s.Name)
			}
			if o := ownerOf(existing); o != nil && o != owner {
				return nil, v.lockedQueue(s.Name)
			}
		}
		if err := available(existing); err != nil {
			return nil, err
		}
		touch(existing)
		return existing, nil
	}
	if s.Exclusive || ownerOf(existing) != nil {
		return v.declareExclusive(s, owner)
	}
	var home string
	if existing == nil {
		home = v.srv.placeQueue(v, s.Name, s.Args)
	}
	err := v.srv.propose(meta.DeclareQueue{Queue: meta.Queue{Vhost: v.name, Name: s.Name, Durable: s.Durable,
		AutoDelete: s.AutoDelete, Args: s.Args, Node: home}, ServerNamed: s.ServerNamed})
	if err != nil {
		return nil, err
	}
	q := v.queue(s.Name)
	if q == nil {
		return nil, v.notFoundQueue(s.Name) // deleted again meanwhile
	}
	if err := available(q); err != nil {
		return nil, err
	}
	touch(q)
	return q, nil
}

// touch resets the x-expires countdown of a queue (a declare counts as
// a use); a queue on another node is touched there.
func touch(q QueueHandle) {
	if t, ok := q.(interface{ Touch() }); ok {
		t.Touch()
	}
}

// newQueue builds a queue of this node with hooks wired to this vhost.
func (v *Vhost) newQueue(cfg queue.Config) *localQueue {
	q := &localQueue{vhost: v, storeKey: v.name + "\x00" + cfg.Name, durable: cfg.Durable && !cfg.Exclusive}
	cfg, policy := v.withPolicy(cfg)
	q.policy.Store(&policy)
	q.queue = queue.New(cfg, queue.Hooks{
		DeadLetter: func(_ *queue.Queue, dead []queue.DeadLetter) { v.srv.deadLetter(v, q, dead) },
		Unused:     func(*queue.Queue) { v.autoDeleteQueue(q) },
		Expired:    func(*queue.Queue) { v.autoDeleteQueue(q) },
		Removed:    func(_ *queue.Queue, msgs []*queue.Message) { v.srv.removed(q, msgs) },
	})
	if pg := v.srv.cfg.QueuePaging; pg.MaxMessages > 0 || pg.MaxBytes > 0 {
		pg.Pager = &queuePager{srv: v.srv, q: q}
		q.queue.EnablePaging(pg)
	}
	return q
}

func (v *Vhost) lockedQueue(name string) error { return meta.LockedQueue(v.name, name) }

// record returns the queue as a metadata record (for the checks of a
// redeclare).
func (q *localQueue) record() meta.Queue {
	cfg := q.queue.Config()
	return meta.Queue{Vhost: q.vhost.name, Name: cfg.Name, Durable: cfg.Durable, AutoDelete: cfg.AutoDelete, Args: cfg.Args}
}

// DeleteQueue deletes a shared queue, returning how many messages it held.
// Deleting a missing queue succeeds with 0.
func (v *Vhost) DeleteQueue(name string, ifUnused, ifEmpty bool) (int, error) {
	return v.deleteQueue(name, ifUnused, ifEmpty, nil)
}

// deleteQueue deletes a queue for a connection (by; nil: the management
// API, which may delete any).
func (v *Vhost) deleteQueue(name string, ifUnused, ifEmpty bool, by *conn) (int, error) {
	h := v.queue(name)
	if h == nil {
		return 0, nil
	}
	if o := ownerOf(h); o != nil && by != nil && o != by {
		return 0, v.lockedQueue(name)
	}
	if err := available(h); err != nil {
		return 0, err
	}
	q, _ := h.(*localQueue)
	ready, _, consumers := h.Counts()
	if ifUnused && consumers > 0 {
		return 0, amqp.Errorf(amqp.PreconditionFailed, "queue '%s' in vhost '%s' in use", name, v.name)
	}
	if ifEmpty && ready > 0 {
		return 0, amqp.Errorf(amqp.PreconditionFailed, "queue '%s' in vhost '%s' not empty", name, v.name)
	}
	if q != nil && q.owner != nil {
		return v.dropExclusive(q), nil
	}
	if err := v.srv.propose(meta.DeleteQueue{Vhost: v.name, Name: name}); err != nil {
		return 0, err
	}
	return ready, nil
}

// autoDeleteQueue removes q (auto-delete after its last consumer, or
// expired) if it is still this vhost's queue of that name. It runs from
// the queue's hooks, after the queue's lock is released, on the goroutine
// that removed the last consumer or on the queue's timer.
func (v *Vhost) autoDeleteQueue(q *localQueue) {
	if v.localQueue(q.Name()) != q {
		return
	}
	if q.owner != nil {
		v.dropExclusive(q)
		return
	}
	if err := v.srv.propose(meta.DeleteQueue{Vhost: v.name, Name: q.Name()}); err != nil {
		v.srv.log.Error("auto-deleting a queue failed", "vhost", v.name, "queue", q.Name(), "err", err)
	}
}

// Bind adds a binding from source to a queue or exchange.
func (v *Vhost) Bind(b exchange.Binding) error {
	if q := v.localQueue(b.Destination.Name); q != nil && !b.Destination.IsExchange && q.owner != nil {
		return v.bindExclusive(b)
	}
	return v.srv.propose(meta.Bind{Binding: meta.Binding{Vhost: v.name, Binding: b}})
}

// Unbind removes a binding; removing a missing one succeeds.
func (v *Vhost) Unbind(b exchange.Binding) error {
	if q := v.localQueue(b.Destination.Name); q != nil && !b.Destination.IsExchange && q.owner != nil {
		return v.unbindExclusive(b)
	}
	return v.srv.propose(meta.Unbind{Binding: meta.Binding{Vhost: v.name, Binding: b}})
}

// serverName returns a fresh server-generated name with a prefix, like amq.gen-….
func serverName(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}
