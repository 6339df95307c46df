package broker

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// predeclared are the exchanges every vhost has.
var predeclared = []struct {
	name string
	kind exchange.Kind
}{
	{"amq.direct", exchange.Direct},
	{"amq.fanout", exchange.Fanout},
	{"amq.topic", exchange.Topic},
	{"amq.headers", exchange.Headers},
	{"amq.match", exchange.Headers},
}

// Vhost is a virtual host: its exchanges and queues. Routing reads the
// exchange map through an atomic pointer to an immutable copy and the
// queues through a sync.Map, so it takes no lock; changes are serialised
// by mu.
type Vhost struct {
	name string
	srv  *Server

	mu        sync.Mutex // serialises declares, deletes and binds
	exchanges atomic.Pointer[map[string]*exchange.Exchange]
	queues    sync.Map // name -> *Queue; lock-free reads, O(1) declares and deletes
	deleted   atomic.Bool
	retired   Counters // message counters of closed connections
	policies  atomic.Pointer[[]*Policy]
}

// Queue is a queue as the broker sees it: the queue itself plus its owner
// (for exclusive queues) and its store key.
type Queue struct {
	*queue.Queue
	vhost    *Vhost
	owner    *conn // exclusive owner, nil otherwise
	storeKey string
	durable  bool // durable and not exclusive: keeps persistent messages on disk
	stats    Counters
	policy   atomic.Pointer[string] // name of the policy applied, "" for none
}

func newVhost(srv *Server, name string) *Vhost {
	v := &Vhost{name: name, srv: srv}
	ex := map[string]*exchange.Exchange{"": exchange.New("", exchange.Direct, true, false, false, nil)}
	for _, p := range predeclared {
		ex[p.name] = exchange.New(p.name, p.kind, true, false, false, nil)
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

// Queue returns the named queue, or nil.
func (v *Vhost) Queue(name string) *Queue {
	q, _ := v.queues.Load(name)
	qq, _ := q.(*Queue)
	return qq
}

// Exchanges returns every exchange of the vhost (the map must not be modified).
func (v *Vhost) Exchanges() map[string]*exchange.Exchange { return *v.exchanges.Load() }

// Queues returns a snapshot of the vhost's queues.
func (v *Vhost) Queues() map[string]*Queue {
	out := map[string]*Queue{}
	v.queues.Range(func(k, q any) bool {
		out[k.(string)] = q.(*Queue)
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

func (v *Vhost) setQueue(name string, q *Queue) {
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

// DeclareExchange creates an exchange or checks that an existing one is equivalent.
func (v *Vhost) DeclareExchange(s ExchangeSpec, passive bool) (*exchange.Exchange, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s.Name == "" {
		return nil, amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
	}
	existing := v.Exchange(s.Name)
	if passive {
		if existing == nil {
			return nil, v.notFoundExchange(s.Name)
		}
		return existing, nil
	}
	kind, ok := exchange.ParseKind(s.Kind)
	if !ok {
		return nil, amqp.Errorf(amqp.CommandInvalid, "unknown exchange type '%s'", s.Kind)
	}
	if strings.HasPrefix(s.Name, "amq.") && existing == nil {
		return nil, amqp.Errorf(amqp.AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", s.Name)
	}
	if existing != nil {
		return existing, v.checkExchangeEquivalent(existing, s, kind)
	}
	if err := validateExchangeArgs(s.Args); err != nil {
		return nil, err
	}
	e := exchange.New(s.Name, kind, s.Durable, s.AutoDelete, s.Internal, s.Args)
	if s.Durable {
		if err := v.srv.persistExchange(v, e); err != nil {
			return nil, err
		}
	}
	v.setExchange(s.Name, e)
	return e, nil
}

func validateExchangeArgs(args amqp.Table) error {
	if ae, ok := args["alternate-exchange"]; ok {
		if _, isStr := ae.(string); !isStr {
			return amqp.Errorf(amqp.PreconditionFailed, "invalid arg 'alternate-exchange': expected a string")
		}
	}
	return nil
}

func (v *Vhost) checkExchangeEquivalent(e *exchange.Exchange, s ExchangeSpec, kind exchange.Kind) error {
	ineq := func(arg string, got, cur any) error {
		return amqp.Errorf(amqp.PreconditionFailed,
			"inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, s.Name, v.name, got, cur)
	}
	switch {
	case e.Kind != kind:
		return ineq("type", kind, e.Kind)
	case e.Durable != s.Durable:
		return ineq("durable", s.Durable, e.Durable)
	case e.AutoDelete != s.AutoDelete:
		return ineq("auto_delete", s.AutoDelete, e.AutoDelete)
	case e.Internal != s.Internal:
		return ineq("internal", s.Internal, e.Internal)
	}
	if !exchange.EqualTables(e.Args, s.Args) {
		return amqp.Errorf(amqp.PreconditionFailed,
			"inequivalent arg 'arguments' for exchange '%s' in vhost '%s'", s.Name, v.name)
	}
	return nil
}

// DeleteExchange deletes an exchange; deleting a missing one succeeds.
func (v *Vhost) DeleteExchange(name string, ifUnused bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if name == "" {
		return amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
	}
	if strings.HasPrefix(name, "amq.") {
		return amqp.Errorf(amqp.AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", name)
	}
	e := v.Exchange(name)
	if e == nil {
		return nil
	}
	if ifUnused && (e.BindingCount() > 0 || v.hasBindingsTo(exchange.Destination{Name: name, IsExchange: true})) {
		return amqp.Errorf(amqp.PreconditionFailed, "exchange '%s' in vhost '%s' in use", name, v.name)
	}
	v.removeExchangeLocked(e)
	return nil
}

func (v *Vhost) hasBindingsTo(d exchange.Destination) bool {
	for _, x := range v.Exchanges() {
		for _, b := range x.Bindings() {
			if b.Destination == d {
				return true
			}
		}
	}
	return false
}

// removeExchangeLocked deletes e with its bindings (as source and destination).
func (v *Vhost) removeExchangeLocked(e *exchange.Exchange) {
	for _, b := range e.Bindings() {
		e.Unbind(b)
		v.srv.unpersistBinding(v, b)
	}
	v.removeDestinationLocked(exchange.Destination{Name: e.Name, IsExchange: true})
	v.setExchange(e.Name, nil)
	if e.Durable {
		v.srv.unpersistExchange(v, e.Name)
	}
}

// removeDestinationLocked removes every binding to d and auto-deletes the
// exchanges that lose their last binding.
func (v *Vhost) removeDestinationLocked(d exchange.Destination) {
	for _, x := range v.Exchanges() {
		removed := x.RemoveDestination(d)
		for _, b := range removed {
			v.srv.unpersistBinding(v, b)
		}
		if len(removed) > 0 {
			v.maybeAutoDeleteLocked(x)
		}
	}
}

func (v *Vhost) maybeAutoDeleteLocked(x *exchange.Exchange) {
	if x.AutoDelete && x.BindingCount() == 0 && v.Exchange(x.Name) == x {
		v.removeExchangeLocked(x)
	}
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

// DeclareQueue creates a queue or checks an existing one. owner is the
// declaring connection (for exclusive queues). It returns the queue and
// whether it was created.
func (v *Vhost) DeclareQueue(s QueueSpec, passive bool, owner *conn) (*Queue, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	existing := v.Queue(s.Name)
	if existing != nil && existing.owner != nil && existing.owner != owner {
		return nil, v.lockedQueue(s.Name)
	}
	if passive {
		if existing == nil {
			return nil, v.notFoundQueue(s.Name)
		}
		existing.Touch()
		return existing, nil
	}
	if existing != nil {
		if err := v.checkQueueEquivalent(existing, s); err != nil {
			return nil, err
		}
		existing.Touch()
		return existing, nil
	}
	if strings.HasPrefix(s.Name, "amq.") && !s.ServerNamed {
		return nil, amqp.Errorf(amqp.AccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", s.Name)
	}
	cfg, err := queue.ParseArguments(v.name, s.Name, s.Args)
	if err != nil {
		return nil, err
	}
	cfg.Name, cfg.Durable, cfg.Exclusive, cfg.AutoDelete, cfg.Args = s.Name, s.Durable, s.Exclusive, s.AutoDelete, s.Args
	q := v.newQueue(cfg)
	if s.Exclusive {
		q.owner = owner
	}
	if cfg.Durable && !cfg.Exclusive {
		if err := v.srv.persistQueue(v, q); err != nil {
			return nil, err
		}
	}
	v.setQueue(s.Name, q)
	if owner != nil && s.Exclusive {
		owner.addExclusive(q)
	}
	return q, nil
}

// newQueue builds a broker queue with hooks wired to this vhost.
func (v *Vhost) newQueue(cfg queue.Config) *Queue {
	q := &Queue{vhost: v, storeKey: v.name + "\x00" + cfg.Name, durable: cfg.Durable && !cfg.Exclusive}
	cfg, policy := v.withPolicy(cfg)
	q.policy.Store(&policy)
	q.Queue = queue.New(cfg, queue.Hooks{
		DeadLetter: func(_ *queue.Queue, dead []queue.DeadLetter) { v.srv.deadLetter(v, q, dead) },
		Unused:     func(*queue.Queue) { v.autoDeleteQueue(q) },
		Expired:    func(*queue.Queue) { v.autoDeleteQueue(q) },
		Removed:    func(_ *queue.Queue, msgs []*queue.Message) { v.srv.removed(q, msgs) },
	})
	if pg := v.srv.cfg.QueuePaging; pg.MaxMessages > 0 || pg.MaxBytes > 0 {
		pg.Pager = &queuePager{srv: v.srv, q: q}
		q.EnablePaging(pg)
	}
	return q
}

func (v *Vhost) lockedQueue(name string) *amqp.Error {
	return amqp.Errorf(amqp.ResourceLocked,
		"cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
		name, v.name)
}

func (v *Vhost) checkQueueEquivalent(q *Queue, s QueueSpec) error {
	cur := q.Config()
	ineq := func(arg string, got, have any) error {
		return amqp.Errorf(amqp.PreconditionFailed,
			"inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, s.Name, v.name, got, have)
	}
	switch {
	case cur.Durable != s.Durable:
		return ineq("durable", s.Durable, cur.Durable)
	case cur.Exclusive != s.Exclusive:
		return v.lockedQueue(s.Name)
	case cur.AutoDelete != s.AutoDelete:
		return ineq("auto_delete", s.AutoDelete, cur.AutoDelete)
	}
	for _, k := range equivalenceArgs {
		a, aok := s.Args[k]
		b, bok := cur.Args[k]
		if aok != bok || (aok && !exchange.EqualTables(amqp.Table{k: normaliseInt(a)}, amqp.Table{k: normaliseInt(b)})) {
			return amqp.Errorf(amqp.PreconditionFailed,
				"inequivalent arg '%s' for queue '%s' in vhost '%s': received %s but current is %s",
				k, s.Name, v.name, describeArg(a, aok), describeArg(b, bok))
		}
	}
	return nil
}

// equivalenceArgs are the queue arguments RabbitMQ compares on redeclare.
var equivalenceArgs = []string{
	"x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-overflow",
	"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-priority",
	"x-single-active-consumer", "x-queue-type", "x-queue-mode",
}

func normaliseInt(v any) any {
	switch n := v.(type) {
	case int8:
		return int64(n)
	case uint8:
		return int64(n)
	case int16:
		return int64(n)
	case uint16:
		return int64(n)
	case int32:
		return int64(n)
	case uint32:
		return int64(n)
	case int:
		return int64(n)
	}
	return v
}

func describeArg(v any, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("the value '%v' of type '%s'", v, argTypeName(v))
}

func argTypeName(v any) string {
	switch v.(type) {
	case string, []byte:
		return "longstr"
	case bool:
		return "bool"
	case int8, uint8, int16, uint16, int32, uint32, int64, int:
		return "signedint"
	case float32, float64:
		return "double"
	case amqp.Table:
		return "table"
	case []any:
		return "array"
	}
	return "void"
}

// DeleteQueue deletes a queue, returning how many messages it held.
// Deleting a missing queue succeeds with 0.
func (v *Vhost) DeleteQueue(name string, ifUnused, ifEmpty bool, by *conn) (int, error) {
	v.mu.Lock()
	q := v.Queue(name)
	if q == nil {
		v.mu.Unlock()
		return 0, nil
	}
	if q.owner != nil && by != nil && q.owner != by {
		v.mu.Unlock()
		return 0, v.lockedQueue(name)
	}
	ready, _, consumers := q.Counts()
	if ifUnused && consumers > 0 {
		v.mu.Unlock()
		return 0, amqp.Errorf(amqp.PreconditionFailed, "queue '%s' in vhost '%s' in use", name, v.name)
	}
	if ifEmpty && ready > 0 {
		v.mu.Unlock()
		return 0, amqp.Errorf(amqp.PreconditionFailed, "queue '%s' in vhost '%s' not empty", name, v.name)
	}
	n := v.removeQueueLocked(q)
	v.mu.Unlock()
	return n, nil
}

// removeQueueLocked deletes q with its bindings and messages and cancels its consumers.
func (v *Vhost) removeQueueLocked(q *Queue) int {
	v.setQueue(q.Name(), nil)
	v.removeDestinationLocked(exchange.Destination{Name: q.Name()})
	consumers, n := q.Delete()
	if q.Config().Durable {
		v.srv.unpersistQueue(v, q)
	}
	if q.owner != nil {
		q.owner.removeExclusive(q)
	}
	for _, c := range consumers {
		if bc, ok := c.(*consumer); ok {
			bc.queueDeleted()
		}
	}
	return n
}

// autoDeleteQueue removes q if it is still this vhost's queue of that name.
func (v *Vhost) autoDeleteQueue(q *Queue) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.Queue(q.Name()) == q {
		v.removeQueueLocked(q)
	}
}

// Bind adds a binding from source to a queue or exchange.
func (v *Vhost) Bind(b exchange.Binding) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	src, err := v.bindingEnds(b)
	if err != nil {
		return err
	}
	if src.Bind(b) && v.bindingDurable(src, b) {
		return v.srv.persistBinding(v, b)
	}
	return nil
}

// Unbind removes a binding; removing a missing one succeeds.
func (v *Vhost) Unbind(b exchange.Binding) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	src, err := v.bindingEnds(b)
	if err != nil {
		return err
	}
	if src.Unbind(b) {
		v.srv.unpersistBinding(v, b)
		v.maybeAutoDeleteLocked(src)
	}
	return nil
}

// bindingEnds checks that both ends of a binding exist and returns the source.
func (v *Vhost) bindingEnds(b exchange.Binding) (*exchange.Exchange, error) {
	if b.Source == "" || (b.Destination.IsExchange && b.Destination.Name == "") {
		return nil, amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
	}
	src := v.Exchange(b.Source)
	if src == nil {
		return nil, v.notFoundExchange(b.Source)
	}
	if b.Destination.IsExchange {
		if v.Exchange(b.Destination.Name) == nil {
			return nil, v.notFoundExchange(b.Destination.Name)
		}
	} else if v.Queue(b.Destination.Name) == nil {
		return nil, v.notFoundQueue(b.Destination.Name)
	}
	return src, nil
}

func (v *Vhost) bindingDurable(src *exchange.Exchange, b exchange.Binding) bool {
	if !src.Durable {
		return false
	}
	if b.Destination.IsExchange {
		d := v.Exchange(b.Destination.Name)
		return d != nil && d.Durable
	}
	q := v.Queue(b.Destination.Name)
	return q != nil && q.isDurable()
}

// serverName returns a fresh server-generated name with a prefix, like amq.gen-….
func serverName(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// bindingRecord is a binding as persisted.
type bindingRecord struct {
	Vhost           string `json:"vhost"`
	Source          string `json:"source"`
	Destination     string `json:"destination"`
	DestinationType string `json:"destination_type"`
	RoutingKey      string `json:"routing_key"`
	Arguments       []byte `json:"arguments"`
}

// bindingKey identifies a binding in the store; the encoded table sorts its keys, so equal arguments give equal keys.
func bindingKey(vhost string, b exchange.Binding) string {
	args := encodeArgs(b.Args)
	dt := "q"
	if b.Destination.IsExchange {
		dt = "e"
	}
	return strings.Join([]string{vhost, b.Source, dt, b.Destination.Name, b.Key, string(args)}, "\x00")
}
