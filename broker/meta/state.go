package meta

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Predeclared are the exchanges every vhost has: the default exchange ""
// and the amq.* ones. They come with their vhost and are not records.
var Predeclared = []Exchange{
	{Name: "", Type: "direct", Durable: true},
	{Name: "amq.direct", Type: "direct", Durable: true},
	{Name: "amq.fanout", Type: "fanout", Durable: true},
	{Name: "amq.topic", Type: "topic", Durable: true},
	{Name: "amq.headers", Type: "headers", Durable: true},
	{Name: "amq.match", Type: "headers", Durable: true},
}

// IsPredeclared reports whether name is one of the predeclared exchanges.
func IsPredeclared(name string) bool {
	for _, p := range Predeclared {
		if p.Name == name {
			return true
		}
	}
	return false
}

// State is the metadata. It is not safe for concurrent use: a Log owns it.
// Records in it are never modified in place (a change replaces them), so a
// record read from it may be kept.
type State struct {
	vhosts map[string]*vhostState
	users  map[string]*User
	perms  map[string]map[string]*Permission // user -> vhost -> permission
}

// vhostState is one vhost's part of the state. Bindings are indexed by
// source and by destination so that cascades cost what they remove.
type vhostState struct {
	rec       *Vhost
	exchanges map[string]*Exchange
	queues    map[string]*Queue
	policies  map[string]*Policy
	bindings  map[string]*Binding                          // by Key
	bySource  map[string]map[string]*Binding               // source -> key -> binding
	byDest    map[exchange.Destination]map[string]*Binding // destination -> key -> binding
}

// NewState returns an empty state.
func NewState() *State {
	return &State{vhosts: map[string]*vhostState{}, users: map[string]*User{}, perms: map[string]map[string]*Permission{}}
}

// Change is one record put or deleted by an op.
type Change struct {
	// Delete is set for a delete; Record is then the record removed.
	Delete bool
	Record Record
	// Durable changes survive a restart: the store keeps them.
	Durable bool
	// prev is what a put replaced (nil: nothing), for Undo.
	prev Record
}

// changes collects what an apply does.
type changes []Change

// maxNameLen bounds names and routing keys (an AMQP short string).
const maxNameLen = 255

// Check reports whether op can be applied to s, with the error RabbitMQ
// gives when it cannot. It does not change s.
func (s *State) Check(op Op) error {
	switch o := op.(type) {
	case AddVhost:
		return checkName("vhost", o.Name)
	case DeleteVhost:
		if s.vhosts[o.Name] == nil {
			return noVhost(o.Name)
		}
	case PutUser:
		return checkName("user", o.User.Name)
	case DeleteUser:
		if s.users[o.Name] == nil {
			return amqp.Errorf(amqp.NotFound, "no user '%s'", o.Name)
		}
	case SetPermission:
		p := o.Permission
		if s.users[p.User] == nil {
			return amqp.Errorf(amqp.NotFound, "no user '%s'", p.User)
		}
		if s.vhosts[p.Vhost] == nil {
			return noVhost(p.Vhost)
		}
		if _, _, _, err := CompilePermission(p); err != nil {
			return amqp.Errorf(amqp.PreconditionFailed, "invalid permission: %v", err)
		}
	case ClearPermission:
		if s.perms[o.User][o.Vhost] == nil {
			return amqp.Errorf(amqp.NotFound, "no permission of user '%s' on vhost '%s'", o.User, o.Vhost)
		}
	case PutPolicy:
		if s.vhosts[o.Policy.Vhost] == nil {
			return noVhost(o.Policy.Vhost)
		}
		p := o.Policy
		if err := p.Validate(); err != nil {
			return amqp.Errorf(amqp.PreconditionFailed, "Validation failed: %v", err)
		}
	case DeletePolicy:
		v := s.vhosts[o.Vhost]
		if v == nil {
			return noVhost(o.Vhost)
		}
		if v.policies[o.Name] == nil {
			return amqp.Errorf(amqp.NotFound, "no policy '%s' in vhost '%s'", o.Name, o.Vhost)
		}
	case DeclareExchange:
		return s.checkDeclareExchange(o.Exchange)
	case DeleteExchange:
		return s.checkDeleteExchange(o)
	case AutoDeleteExchange:
		if s.vhosts[o.Vhost] == nil {
			return noVhost(o.Vhost)
		}
	case DeclareQueue:
		v := s.vhosts[o.Queue.Vhost]
		if v == nil {
			return noVhost(o.Queue.Vhost)
		}
		// RabbitMQ checks the name before it looks the queue up: a
		// server-named queue cannot be redeclared by name.
		if err := checkQueueName(o.Queue.Name, o.ServerNamed); err != nil {
			return err
		}
		if cur := v.queues[o.Queue.Name]; cur != nil {
			return CheckQueueEquivalent(*cur, false, o.Queue, false)
		}
		return CheckNewQueue(o.Queue, o.ServerNamed)
	case DeleteQueue:
		if s.vhosts[o.Vhost] == nil {
			return noVhost(o.Vhost)
		}
	case Bind:
		return s.checkBind(o.Binding)
	case Unbind:
		if s.vhosts[o.Binding.Vhost] == nil {
			return noVhost(o.Binding.Vhost)
		}
		return CheckUnbind(o.Binding)
	case Batch:
		c := s.Clone()
		for _, sub := range o.Ops {
			if _, ok := sub.(Batch); ok {
				return fmt.Errorf("a batch may not contain a batch")
			}
			if err := c.Check(sub); err != nil {
				return fmt.Errorf("%s: %w", sub, err)
			}
			c.Apply(sub)
		}
	default:
		return fmt.Errorf("unknown metadata operation %T", op)
	}
	return nil
}

func noVhost(name string) error {
	return amqp.Errorf(amqp.NotFound, "no vhost '%s'", name)
}

func checkName(what, name string) error {
	if name == "" {
		return amqp.Errorf(amqp.PreconditionFailed, "%s name must not be empty", what)
	}
	if len(name) > maxNameLen {
		return amqp.Errorf(amqp.PreconditionFailed, "%s name is longer than %d bytes", what, maxNameLen)
	}
	return nil
}

// checkDeclareExchange checks in RabbitMQ's order: the type, the default
// exchange, then an existing exchange's equivalence or a new one's name
// and alternate-exchange argument.
func (s *State) checkDeclareExchange(e Exchange) error {
	v := s.vhosts[e.Vhost]
	if v == nil {
		return noVhost(e.Vhost)
	}
	if _, ok := exchange.ParseKind(e.Type); !ok {
		return amqp.Errorf(amqp.CommandInvalid, "unknown exchange type '%s'", e.Type)
	}
	if e.Name == "" {
		return amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
	}
	if existing := v.exchanges[e.Name]; existing != nil {
		return checkExchangeEquivalent(*existing, e)
	}
	if len(e.Name) > maxNameLen {
		return amqp.Errorf(amqp.PreconditionFailed, "exchange name is longer than %d bytes", maxNameLen)
	}
	if strings.HasPrefix(e.Name, "amq.") {
		return amqp.Errorf(amqp.AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", e.Name)
	}
	if ae, ok := e.Args["alternate-exchange"]; ok {
		if _, isStr := ae.(string); !isStr {
			return amqp.Errorf(amqp.PreconditionFailed, "invalid type '%s' for arg 'alternate-exchange' in exchange '%s' in vhost '%s'",
				amqp.TypeName(ae), e.Name, e.Vhost)
		}
	}
	return nil
}

func (s *State) checkDeleteExchange(o DeleteExchange) error {
	v := s.vhosts[o.Vhost]
	if v == nil {
		return noVhost(o.Vhost)
	}
	if o.Name == "" {
		return amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
	}
	if strings.HasPrefix(o.Name, "amq.") {
		return amqp.Errorf(amqp.AccessRefused, "deletion of system exchange '%s' in vhost '%s' not allowed", o.Name, o.Vhost)
	}
	if v.exchanges[o.Name] == nil {
		return nil
	}
	// As in RabbitMQ, an exchange is in use when it is the source of a
	// binding; the bindings to it go with it.
	if o.IfUnused && len(v.bySource[o.Name]) > 0 {
		return amqp.Errorf(amqp.PreconditionFailed, "exchange '%s' in vhost '%s' in use", o.Name, o.Vhost)
	}
	return nil
}

// LockedQueue is RabbitMQ's 405 RESOURCE_LOCKED for an exclusive queue of
// another connection.
func LockedQueue(vhost, name string) error {
	return amqp.Errorf(amqp.ResourceLocked,
		"cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
		name, vhost)
}

// CheckNewQueue checks a queue that does not exist yet: its name and its
// arguments. Exclusive queues, which are not metadata, are checked with it
// too.
func CheckNewQueue(q Queue, serverNamed bool) error {
	if err := checkQueueName(q.Name, serverNamed); err != nil {
		return err
	}
	_, err := queue.ParseArguments(q.Vhost, q.Name, q.Args)
	return err
}

func checkQueueName(name string, serverNamed bool) error {
	if len(name) > maxNameLen {
		return amqp.Errorf(amqp.PreconditionFailed, "queue name is longer than %d bytes", maxNameLen)
	}
	if strings.HasPrefix(name, "amq.") && !serverNamed {
		return amqp.Errorf(amqp.AccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	return nil
}

func (s *State) checkBind(b Binding) error {
	v := s.vhosts[b.Vhost]
	if v == nil {
		return noVhost(b.Vhost)
	}
	if err := CheckBindingEnds(b,
		func(name string) bool { return v.exchanges[name] != nil },
		func(name string) bool { return v.queues[name] != nil }); err != nil {
		return err
	}
	return CheckBindingArgs(b, v.exchanges[b.Source].Type)
}

// CheckBindingEnds checks that both ends of a binding to be added exist,
// through the lookups given (so that a binding to an exclusive queue,
// which is not metadata, is checked the same way).
func CheckBindingEnds(b Binding, hasExchange, hasQueue func(string) bool) error {
	if err := checkBindingNames(b); err != nil {
		return err
	}
	if !hasExchange(b.Source) {
		return amqp.Errorf(amqp.NotFound, "no exchange '%s' in vhost '%s'", b.Source, b.Vhost)
	}
	if b.Destination.IsExchange {
		if !hasExchange(b.Destination.Name) {
			return amqp.Errorf(amqp.NotFound, "no exchange '%s' in vhost '%s'", b.Destination.Name, b.Vhost)
		}
	} else if !hasQueue(b.Destination.Name) {
		return amqp.Errorf(amqp.NotFound, "no queue '%s' in vhost '%s'", b.Destination.Name, b.Vhost)
	}
	return nil
}

// CheckUnbind checks a binding to be removed. As in RabbitMQ, removing a
// binding whose source, queue or destination exchange does not exist
// succeeds (it removes nothing); only the names are checked.
func CheckUnbind(b Binding) error {
	return checkBindingNames(b)
}

// checkBindingNames refuses the default exchange at either end and an
// over-long routing key.
func checkBindingNames(b Binding) error {
	if b.Source == "" || (b.Destination.IsExchange && b.Destination.Name == "") {
		return amqp.Errorf(amqp.AccessRefused, "operation not permitted on the default exchange")
	}
	if len(b.Key) > maxNameLen {
		return amqp.Errorf(amqp.PreconditionFailed, "routing key is longer than %d bytes", maxNameLen)
	}
	return nil
}

// CheckBindingArgs checks the arguments of a binding to be added against
// the type of its source exchange, after its ends (CheckBindingEnds): a
// headers exchange takes x-match all, any, all-with-x or any-with-x (or
// none, which is all), with RabbitMQ's 406 otherwise.
func CheckBindingArgs(b Binding, sourceType string) error {
	if sourceType != "headers" {
		return nil
	}
	v, ok := b.Args["x-match"]
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		return amqp.Errorf(amqp.PreconditionFailed, "Invalid x-match field type %s (value %s); expected longstr",
			amqp.TypeName(v), erlangTerm(v))
	}
	switch s {
	case "all", "any", "all-with-x", "any-with-x":
		return nil
	}
	return amqp.Errorf(amqp.PreconditionFailed, "Invalid x-match field value %s; expected all, any, all-with-x, or any-with-x",
		erlangTerm(v))
}

// Apply performs a checked op and returns the changes it made, in order.
// It is deterministic: the same op on the same state makes the same
// changes. An op that fails Check must not be applied.
func (s *State) Apply(op Op) []Change {
	var c changes
	s.apply(op, &c)
	return c
}

func (s *State) apply(op Op, c *changes) {
	switch o := op.(type) {
	case AddVhost:
		if s.vhosts[o.Name] == nil {
			s.put(&Vhost{Name: o.Name}, true, c)
		}
	case DeleteVhost:
		s.deleteVhost(o.Name, c)
	case PutUser:
		u := o.User
		u.Tags = append([]string(nil), u.Tags...)
		s.put(&u, true, c)
	case DeleteUser:
		for _, vh := range sortedKeys(s.perms[o.Name]) {
			s.del(s.perms[o.Name][vh], true, c)
		}
		s.del(s.users[o.Name], true, c)
	case SetPermission:
		p := o.Permission
		s.put(&p, true, c)
	case ClearPermission:
		s.del(s.perms[o.User][o.Vhost], true, c)
	case PutPolicy:
		p := o.Policy
		_ = p.Validate() // checked: this only sets the default apply-to
		s.put(&p, true, c)
	case DeletePolicy:
		s.del(s.vhosts[o.Vhost].policies[o.Name], true, c)
	case DeclareExchange:
		v := s.vhosts[o.Exchange.Vhost]
		if v.exchanges[o.Exchange.Name] == nil {
			e := o.Exchange
			s.put(&e, e.Durable, c)
		}
	case DeleteExchange:
		v := s.vhosts[o.Vhost]
		if e := v.exchanges[o.Name]; e != nil {
			s.deleteExchange(v, e, c)
		}
	case AutoDeleteExchange:
		s.maybeAutoDelete(s.vhosts[o.Vhost], o.Name, c)
	case DeclareQueue:
		v := s.vhosts[o.Queue.Vhost]
		if v.queues[o.Queue.Name] == nil {
			q := o.Queue
			s.put(&q, q.Durable, c)
		}
	case DeleteQueue:
		v := s.vhosts[o.Vhost]
		if q := v.queues[o.Name]; q != nil {
			s.deleteDestination(v, exchange.Destination{Name: q.Name}, c)
			s.del(q, q.Durable, c)
		}
	case Bind:
		b := o.Binding
		v := s.vhosts[b.Vhost]
		if v.bindings[b.ID()] == nil {
			s.put(&b, v.bindingDurable(&b), c)
		}
	case Unbind:
		v := s.vhosts[o.Binding.Vhost]
		if b := v.bindings[o.Binding.ID()]; b != nil {
			s.del(b, v.bindingDurable(b), c)
			s.maybeAutoDelete(v, b.Source, c)
		}
	case Batch:
		for _, sub := range o.Ops {
			s.apply(sub, c)
		}
	}
}

// bindingDurable reports whether a binding survives a restart: both its
// ends do.
func (v *vhostState) bindingDurable(b *Binding) bool {
	src := v.exchanges[b.Source]
	if src == nil || !src.Durable {
		return false
	}
	if b.Destination.IsExchange {
		d := v.exchanges[b.Destination.Name]
		return d != nil && d.Durable
	}
	q := v.queues[b.Destination.Name]
	return q != nil && q.Durable
}

// deleteExchange removes e with the bindings from and to it.
func (s *State) deleteExchange(v *vhostState, e *Exchange, c *changes) {
	for _, k := range sortedKeys(v.bySource[e.Name]) {
		b := v.bySource[e.Name][k]
		s.del(b, v.bindingDurable(b), c)
	}
	s.deleteDestination(v, exchange.Destination{Name: e.Name, IsExchange: true}, c)
	s.del(e, e.Durable, c)
}

// deleteDestination removes every binding to d and auto-deletes the
// sources that lose their last binding.
func (s *State) deleteDestination(v *vhostState, d exchange.Destination, c *changes) {
	bs := v.byDest[d]
	var sources []string
	for _, k := range sortedKeys(bs) {
		b := bs[k]
		s.del(b, v.bindingDurable(b), c)
		sources = append(sources, b.Source)
	}
	for _, src := range sources {
		s.maybeAutoDelete(v, src, c)
	}
}

// maybeAutoDelete deletes an auto-delete exchange without bindings.
func (s *State) maybeAutoDelete(v *vhostState, name string, c *changes) {
	e := v.exchanges[name]
	if e != nil && e.AutoDelete && len(v.bySource[name]) == 0 {
		s.deleteExchange(v, e, c)
	}
}

func (s *State) deleteVhost(name string, c *changes) {
	v := s.vhosts[name]
	for _, k := range sortedKeys(v.bindings) {
		b := v.bindings[k]
		s.del(b, v.bindingDurable(b), c)
	}
	for _, k := range sortedKeys(v.queues) {
		q := v.queues[k]
		s.del(q, q.Durable, c)
	}
	for _, k := range sortedKeys(v.exchanges) {
		if e := v.exchanges[k]; !IsPredeclared(k) {
			s.del(e, e.Durable, c)
		}
	}
	for _, k := range sortedKeys(v.policies) {
		s.del(v.policies[k], true, c)
	}
	for _, u := range sortedKeys(s.perms) {
		if p := s.perms[u][name]; p != nil {
			s.del(p, true, c)
		}
	}
	s.del(v.rec, true, c)
}

// put stores r, recording the change.
func (s *State) put(r Record, durable bool, c *changes) {
	*c = append(*c, Change{Record: r, Durable: durable, prev: s.set(r)})
}

// del removes r, recording the change.
func (s *State) del(r Record, durable bool, c *changes) {
	s.remove(r)
	*c = append(*c, Change{Delete: true, Record: r, Durable: durable})
}

// set stores r and returns the record of the same kind and key it
// replaced, or nil.
func (s *State) set(r Record) Record {
	switch r := r.(type) {
	case *Vhost:
		prev := s.vhosts[r.Name]
		v := &vhostState{rec: r, exchanges: map[string]*Exchange{}, queues: map[string]*Queue{},
			policies: map[string]*Policy{}, bindings: map[string]*Binding{},
			bySource: map[string]map[string]*Binding{}, byDest: map[exchange.Destination]map[string]*Binding{}}
		for _, p := range Predeclared {
			e := p
			e.Vhost = r.Name
			v.exchanges[e.Name] = &e
		}
		s.vhosts[r.Name] = v
		if prev != nil {
			return prev.rec
		}
	case *User:
		return swap(s.users, r.Name, r)
	case *Permission:
		m := s.perms[r.User]
		if m == nil {
			m = map[string]*Permission{}
			s.perms[r.User] = m
		}
		return swap(m, r.Vhost, r)
	case *Policy:
		return swap(s.vhosts[r.Vhost].policies, r.Name, r)
	case *Exchange:
		return swap(s.vhosts[r.Vhost].exchanges, r.Name, r)
	case *Queue:
		return swap(s.vhosts[r.Vhost].queues, r.Name, r)
	case *Binding:
		v := s.vhosts[r.Vhost]
		k := r.ID()
		index(v.bySource, r.Source, k, r)
		index(v.byDest, r.Destination, k, r)
		return swap(v.bindings, k, r)
	}
	return nil
}

// swap stores r under k in m and returns the record it replaced, or nil
// (never a nil pointer in a Record).
func swap[K comparable, R Record](m map[K]R, k K, r R) Record {
	prev, ok := m[k]
	m[k] = r
	if !ok {
		return nil
	}
	return prev
}

// remove deletes the record of r's kind and key.
func (s *State) remove(r Record) {
	switch r := r.(type) {
	case *Vhost:
		delete(s.vhosts, r.Name)
	case *User:
		delete(s.users, r.Name)
	case *Permission:
		delete(s.perms[r.User], r.Vhost)
		if len(s.perms[r.User]) == 0 {
			delete(s.perms, r.User)
		}
	case *Policy:
		delete(s.vhosts[r.Vhost].policies, r.Name)
	case *Exchange:
		delete(s.vhosts[r.Vhost].exchanges, r.Name)
	case *Queue:
		delete(s.vhosts[r.Vhost].queues, r.Name)
	case *Binding:
		v := s.vhosts[r.Vhost]
		k := r.ID()
		delete(v.bindings, k)
		unindex(v.bySource, r.Source, k)
		unindex(v.byDest, r.Destination, k)
	}
}

func index[K comparable](m map[K]map[string]*Binding, at K, key string, b *Binding) {
	inner := m[at]
	if inner == nil {
		inner = map[string]*Binding{}
		m[at] = inner
	}
	inner[key] = b
}

func unindex[K comparable](m map[K]map[string]*Binding, at K, key string) {
	delete(m[at], key)
	if len(m[at]) == 0 {
		delete(m, at)
	}
}

// Undo reverts changes that Apply returned, newest first, so that a log
// whose write failed leaves the state as it was. A vhost that a change
// re-creates comes back without the records its deletion removed; they
// are among the changes and come back too.
func (s *State) Undo(cs []Change) {
	for i := len(cs) - 1; i >= 0; i-- {
		ch := cs[i]
		switch {
		case ch.Delete:
			s.set(ch.Record)
		case ch.prev != nil:
			s.set(ch.prev)
		default:
			s.remove(ch.Record)
		}
	}
}

// Clone returns a copy of s that shares its (immutable) records.
func (s *State) Clone() *State {
	c := NewState()
	s.Each(func(r Record) { c.set(r) })
	return c
}

// Each calls fn for every record, kinds in dependency order (vhosts,
// users, permissions, policies, exchanges, queues, bindings) and each kind
// sorted by key, so that the order is the same on every node. Predeclared
// exchanges are not records and are left out.
func (s *State) Each(fn func(Record)) {
	vhosts := sortedKeys(s.vhosts)
	for _, name := range vhosts {
		fn(s.vhosts[name].rec)
	}
	for _, name := range sortedKeys(s.users) {
		fn(s.users[name])
	}
	for _, u := range sortedKeys(s.perms) {
		for _, vh := range sortedKeys(s.perms[u]) {
			fn(s.perms[u][vh])
		}
	}
	for _, name := range vhosts {
		v := s.vhosts[name]
		for _, k := range sortedKeys(v.policies) {
			fn(v.policies[k])
		}
	}
	for _, name := range vhosts {
		v := s.vhosts[name]
		for _, k := range sortedKeys(v.exchanges) {
			if !IsPredeclared(k) {
				fn(v.exchanges[k])
			}
		}
	}
	for _, name := range vhosts {
		v := s.vhosts[name]
		for _, k := range sortedKeys(v.queues) {
			fn(v.queues[k])
		}
	}
	for _, name := range vhosts {
		v := s.vhosts[name]
		for _, k := range sortedKeys(v.bindings) {
			fn(v.bindings[k])
		}
	}
}

// Durable reports whether a record of s survives a restart (for bindings:
// both ends do).
func (s *State) Durable(r Record) bool {
	switch r := r.(type) {
	case *Exchange:
		return r.Durable
	case *Queue:
		return r.Durable
	case *Binding:
		v := s.vhosts[r.Vhost]
		return v != nil && v.bindingDurable(r)
	}
	return true
}

// Vhost returns the named vhost, or nil.
func (s *State) Vhost(name string) *Vhost {
	if v := s.vhosts[name]; v != nil {
		return v.rec
	}
	return nil
}

// User returns the named user, or nil.
func (s *State) User(name string) *User { return s.users[name] }

// Exchange returns the named exchange of a vhost, or nil.
func (s *State) Exchange(vhost, name string) *Exchange {
	if v := s.vhosts[vhost]; v != nil {
		return v.exchanges[name]
	}
	return nil
}

// Queue returns the named queue of a vhost, or nil.
func (s *State) Queue(vhost, name string) *Queue {
	if v := s.vhosts[vhost]; v != nil {
		return v.queues[name]
	}
	return nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Answer reports whether op can be answered from s alone, without a
// round through the log, as RabbitMQ answers a redeclare from its local
// tables: done with a nil error when s already holds what op would put (a
// vhost, exchange, queue or binding that exists, a user, permission or
// policy that is the same, or a batch of such ops), done with the check's
// error when op is such a put and is refused for a reason that no other
// node's change can lift (an inequivalent redeclare, invalid arguments, a
// reserved name; not a missing vhost, exchange or queue, which may have
// been created elsewhere a moment ago). Deletes are never answered here.
func (s *State) Answer(op Op) (done bool, err error) {
	if b, ok := op.(Batch); ok {
		for _, sub := range b.Ops {
			if !s.holds(sub) {
				return false, nil
			}
		}
		return len(b.Ops) > 0, nil
	}
	switch op.(type) {
	case AddVhost, DeclareExchange, DeclareQueue, Bind, PutUser, SetPermission, PutPolicy:
	default:
		return false, nil
	}
	if err := s.Check(op); err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return false, nil
		}
		return true, err
	}
	return s.holds(op), nil
}

// holds reports whether op passes its check and applying it would change
// nothing.
func (s *State) holds(op Op) bool {
	if s.Check(op) != nil {
		return false
	}
	same := func(cur, want Record) bool {
		return cur != nil && string(appendRecord(nil, cur)) == string(appendRecord(nil, want))
	}
	switch o := op.(type) {
	case AddVhost:
		return s.vhosts[o.Name] != nil
	case DeclareExchange:
		return s.Exchange(o.Exchange.Vhost, o.Exchange.Name) != nil
	case DeclareQueue:
		return s.Queue(o.Queue.Vhost, o.Queue.Name) != nil
	case Bind:
		v := s.vhosts[o.Binding.Vhost]
		return v != nil && v.bindings[o.Binding.ID()] != nil
	case PutUser:
		u := o.User
		cur := s.users[u.Name]
		return cur != nil && same(cur, &u)
	case SetPermission:
		p := o.Permission
		cur := s.perms[p.User][p.Vhost]
		return cur != nil && same(cur, &p)
	case PutPolicy:
		p := o.Policy
		_ = p.Validate() // checked: this only sets the default apply-to
		v := s.vhosts[p.Vhost]
		return v != nil && v.policies[p.Name] != nil && same(v.policies[p.Name], &p)
	}
	return false
}
