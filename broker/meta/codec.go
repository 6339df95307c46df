package meta

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// The encodings are deterministic: the same value always gives the same
// bytes (field tables sort their keys, policy definitions are JSON with
// sorted keys). Exchanges, queues and bindings are written as the AMQP
// method that declares them (exchange.declare, queue.declare, queue.bind,
// exchange.bind), preceded by their vhost.

// codecVersion opens every encoded change list and snapshot. Version 2
// added the home node of a queue record (after its queue.declare);
// version 1 data still decodes, its queues without a home.
const codecVersion = 2

// AppendOp appends the encoding of op.
func AppendOp(buf []byte, op Op) []byte {
	buf = append(buf, byte(op.opCode()))
	switch o := op.(type) {
	case AddVhost:
		buf = appendString(buf, o.Name)
	case DeleteVhost:
		buf = appendString(buf, o.Name)
	case PutUser:
		buf = appendUser(buf, &o.User)
	case DeleteUser:
		buf = appendString(buf, o.Name)
	case SetPermission:
		buf = appendPermission(buf, &o.Permission)
	case ClearPermission:
		buf = appendString(appendString(buf, o.User), o.Vhost)
	case PutPolicy:
		buf = appendPolicy(buf, &o.Policy)
	case DeletePolicy:
		buf = appendString(appendString(buf, o.Vhost), o.Name)
	case DeclareExchange:
		buf = appendExchange(buf, &o.Exchange)
	case DeleteExchange:
		buf = appendBool(appendString(appendString(buf, o.Vhost), o.Name), o.IfUnused)
	case AutoDeleteExchange:
		buf = appendString(appendString(buf, o.Vhost), o.Name)
	case DeclareQueue:
		// A flags byte follows the queue: 1 server-named, 2 a home node
		// follows (ops written before queues had homes hold 0 or 1).
		var flags byte
		if o.ServerNamed {
			flags |= declareServerNamed
		}
		if o.Queue.Node != "" {
			flags |= declareHasNode
		}
		buf = append(appendQueue(buf, &o.Queue), flags)
		if o.Queue.Node != "" {
			buf = appendString(buf, o.Queue.Node)
		}
	case DeleteQueue:
		buf = appendString(appendString(buf, o.Vhost), o.Name)
	case Bind:
		buf = appendBinding(buf, &o.Binding)
	case Unbind:
		buf = appendBinding(buf, &o.Binding)
	case Batch:
		buf = binary.AppendUvarint(buf, uint64(len(o.Ops)))
		for _, sub := range o.Ops {
			buf = appendBytes(buf, AppendOp(nil, sub))
		}
	}
	return buf
}

// DecodeOp decodes an op that AppendOp encoded.
func DecodeOp(b []byte) (Op, error) {
	r := &reader{b: b}
	op := r.op()
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the op", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode metadata op: %w", r.err)
	}
	return op, nil
}

func (r *reader) op() Op {
	switch opCode(r.byte()) {
	case opAddVhost:
		return AddVhost{Name: r.string()}
	case opDeleteVhost:
		return DeleteVhost{Name: r.string()}
	case opPutUser:
		return PutUser{User: *r.user()}
	case opDeleteUser:
		return DeleteUser{Name: r.string()}
	case opSetPermission:
		return SetPermission{Permission: *r.permission()}
	case opClearPermission:
		return ClearPermission{User: r.string(), Vhost: r.string()}
	case opPutPolicy:
		return PutPolicy{Policy: *r.policy()}
	case opDeletePolicy:
		return DeletePolicy{Vhost: r.string(), Name: r.string()}
	case opDeclareExchange:
		return DeclareExchange{Exchange: *r.exchange()}
	case opDeleteExchange:
		return DeleteExchange{Vhost: r.string(), Name: r.string(), IfUnused: r.bool()}
	case opAutoDeleteExchange:
		return AutoDeleteExchange{Vhost: r.string(), Name: r.string()}
	case opDeclareQueue:
		q := r.queue()
		flags := r.byte()
		if flags&^(declareServerNamed|declareHasNode) != 0 {
			r.fail(fmt.Errorf("unknown queue.declare flags %#x", flags))
		}
		if flags&declareHasNode != 0 {
			q.Node = r.string()
		}
		return DeclareQueue{Queue: *q, ServerNamed: flags&declareServerNamed != 0}
	case opDeleteQueue:
		return DeleteQueue{Vhost: r.string(), Name: r.string()}
	case opBind:
		return Bind{Binding: *r.binding()}
	case opUnbind:
		return Unbind{Binding: *r.binding()}
	case opBatch:
		n := r.count()
		ops := make([]Op, 0, n)
		for i := 0; i < n && r.err == nil; i++ {
			sub, err := DecodeOp(r.bytes())
			if err != nil {
				r.fail(err)
				break
			}
			ops = append(ops, sub)
		}
		return Batch{Ops: ops}
	}
	r.fail(errors.New("unknown op code"))
	return nil
}

// The flags of an encoded DeclareQueue.
const (
	declareServerNamed byte = 1
	declareHasNode     byte = 2
)

// AppendChanges appends the encoding of a list of changes (a log entry).
func AppendChanges(buf []byte, cs []Change) []byte {
	buf = append(buf, codecVersion)
	buf = binary.AppendUvarint(buf, uint64(len(cs)))
	for _, c := range cs {
		buf = appendBool(buf, c.Delete)
		buf = appendRecord(buf, c.Record)
	}
	return buf
}

// DecodeChanges decodes what AppendChanges encoded. The changes come back
// without their Durable flags.
func DecodeChanges(b []byte) ([]Change, error) {
	r := &reader{b: b}
	r.version()
	n := r.count()
	out := make([]Change, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		del := r.bool()
		out = append(out, Change{Delete: del, Record: r.record()})
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the changes", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode metadata changes: %w", r.err)
	}
	return out, nil
}

// Snapshot encodes the whole state, or with durableOnly the part that
// survives a restart, as records in the order of State.Each.
func Snapshot(s *State, durableOnly bool) []byte {
	var recs []Record
	s.Each(func(r Record) {
		if !durableOnly || s.Durable(r) {
			recs = append(recs, r)
		}
	})
	buf := []byte{codecVersion}
	buf = binary.AppendUvarint(buf, uint64(len(recs)))
	for _, r := range recs {
		buf = appendRecord(buf, r)
	}
	return buf
}

// Restore decodes a snapshot into a new state.
func Restore(b []byte) (*State, error) {
	s := NewState()
	if len(b) == 0 {
		return s, nil
	}
	r := &reader{b: b}
	r.version()
	n := r.count()
	for i := 0; i < n && r.err == nil; i++ {
		rec := r.record()
		if r.err == nil {
			r.err = s.load(rec)
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the records", len(r.b))
	}
	if r.err != nil {
		return nil, fmt.Errorf("restore metadata snapshot: %w", r.err)
	}
	return s, nil
}

// Replay applies logged changes (from DecodeChanges) to s, as restart
// recovery does after restoring the snapshot.
func (s *State) Replay(cs []Change) error {
	for _, c := range cs {
		if c.Delete {
			if s.has(c.Record) {
				s.remove(c.Record)
			}
			continue
		}
		if err := s.load(c.Record); err != nil {
			return err
		}
	}
	return nil
}

// load puts a decoded record, checking that what it belongs to exists.
func (s *State) load(r Record) error {
	if vh, in := recordVhost(r); in && s.vhosts[vh] == nil {
		return fmt.Errorf("%s %q refers to vhost %q, which does not exist", r.Kind(), r.ID(), vh)
	}
	s.set(r)
	return nil
}

// has reports whether the record of r's kind and key exists.
func (s *State) has(r Record) bool {
	switch r := r.(type) {
	case *Vhost:
		return s.vhosts[r.Name] != nil
	case *User:
		return s.users[r.Name] != nil
	case *Permission:
		return s.perms[r.User][r.Vhost] != nil
	}
	vh, _ := recordVhost(r)
	v := s.vhosts[vh]
	if v == nil {
		return false
	}
	switch r := r.(type) {
	case *Policy:
		return v.policies[r.Name] != nil
	case *Exchange:
		return v.exchanges[r.Name] != nil
	case *Queue:
		return v.queues[r.Name] != nil
	case *Binding:
		return v.bindings[r.ID()] != nil
	}
	return false
}

// recordVhost is the vhost a record lives in; in is false for vhosts and
// users, which live in none. (A name may be "": a decoded record is not
// checked, so "" is not "none".)
func recordVhost(r Record) (vhost string, in bool) {
	switch r := r.(type) {
	case *Permission:
		return r.Vhost, true
	case *Policy:
		return r.Vhost, true
	case *Exchange:
		return r.Vhost, true
	case *Queue:
		return r.Vhost, true
	case *Binding:
		return r.Vhost, true
	}
	return "", false
}

func appendRecord(buf []byte, r Record) []byte {
	buf = append(buf, byte(r.Kind()))
	switch r := r.(type) {
	case *Vhost:
		return appendString(buf, r.Name)
	case *User:
		return appendUser(buf, r)
	case *Permission:
		return appendPermission(buf, r)
	case *Policy:
		return appendPolicy(buf, r)
	case *Exchange:
		return appendExchange(buf, r)
	case *Queue:
		return appendString(appendQueue(buf, r), r.Node)
	case *Binding:
		return appendBinding(buf, r)
	}
	return buf
}

func (r *reader) record() Record {
	switch Kind(r.byte()) {
	case KindVhost:
		return &Vhost{Name: r.string()}
	case KindUser:
		return r.user()
	case KindPermission:
		return r.permission()
	case KindPolicy:
		return r.policy()
	case KindExchange:
		return r.exchange()
	case KindQueue:
		q := r.queue()
		if r.ver >= 2 {
			q.Node = r.string()
		}
		return q
	case KindBinding:
		return r.binding()
	}
	r.fail(errors.New("unknown record kind"))
	return &Vhost{}
}

func appendUser(buf []byte, u *User) []byte {
	buf = appendString(appendString(buf, u.Name), u.PasswordHash)
	buf = binary.AppendUvarint(buf, uint64(len(u.Tags)))
	for _, t := range u.Tags {
		buf = appendString(buf, t)
	}
	return buf
}

func (r *reader) user() *User {
	u := &User{Name: r.string(), PasswordHash: r.string()}
	n := r.count()
	for i := 0; i < n && r.err == nil; i++ {
		u.Tags = append(u.Tags, r.string())
	}
	return u
}

func appendPermission(buf []byte, p *Permission) []byte {
	for _, s := range [...]string{p.User, p.Vhost, p.Configure, p.Write, p.Read} {
		buf = appendString(buf, s)
	}
	return buf
}

func (r *reader) permission() *Permission {
	return &Permission{User: r.string(), Vhost: r.string(), Configure: r.string(), Write: r.string(), Read: r.string()}
}

func appendPolicy(buf []byte, p *Policy) []byte {
	for _, s := range [...]string{p.Vhost, p.Name, p.Pattern, p.ApplyTo} {
		buf = appendString(buf, s)
	}
	buf = binary.AppendVarint(buf, int64(p.Priority))
	def, err := json.Marshal(p.Definition)
	if err != nil { // definitions come from JSON; anything else is a bug
		panic(fmt.Sprintf("encode policy definition: %v", err))
	}
	return appendBytes(buf, def)
}

func (r *reader) policy() *Policy {
	p := &Policy{Vhost: r.string(), Name: r.string(), Pattern: r.string(), ApplyTo: r.string(), Priority: int(r.varint())}
	if def := r.bytes(); r.err == nil {
		if err := json.Unmarshal(def, &p.Definition); err != nil {
			r.fail(fmt.Errorf("policy definition: %w", err))
		}
	}
	return p
}

func appendExchange(buf []byte, e *Exchange) []byte {
	m := amqp.ExchangeDeclare{Exchange: e.Name, Type: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: e.Args}
	return appendBytes(appendString(buf, e.Vhost), m.AppendArgs(nil))
}

func (r *reader) exchange() *Exchange {
	vhost := r.string()
	var m amqp.ExchangeDeclare
	r.method(&m)
	return &Exchange{Vhost: vhost, Name: m.Exchange, Type: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete, Internal: m.Internal, Args: m.Arguments}
}

// appendQueue appends a queue's vhost and declaration (without its home
// node, which records and ops append after it).
func appendQueue(buf []byte, q *Queue) []byte {
	m := amqp.QueueDeclare{Queue: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: q.Args}
	return appendBytes(appendString(buf, q.Vhost), m.AppendArgs(nil))
}

func (r *reader) queue() *Queue {
	vhost := r.string()
	var m amqp.QueueDeclare
	r.method(&m)
	return &Queue{Vhost: vhost, Name: m.Queue, Durable: m.Durable, AutoDelete: m.AutoDelete, Args: m.Arguments}
}

func appendBinding(buf []byte, b *Binding) []byte {
	buf = appendBool(appendString(buf, b.Vhost), b.Destination.IsExchange)
	if b.Destination.IsExchange {
		m := amqp.ExchangeBind{Destination: b.Destination.Name, Source: b.Source, RoutingKey: b.Key, Arguments: b.Args}
		return appendBytes(buf, m.AppendArgs(nil))
	}
	m := amqp.QueueBind{Queue: b.Destination.Name, Exchange: b.Source, RoutingKey: b.Key, Arguments: b.Args}
	return appendBytes(buf, m.AppendArgs(nil))
}

func (r *reader) binding() *Binding {
	vhost := r.string()
	if r.bool() {
		var m amqp.ExchangeBind
		r.method(&m)
		return &Binding{Vhost: vhost, Binding: exchange.Binding{Source: m.Source,
			Destination: exchange.Destination{Name: m.Destination, IsExchange: true}, Key: m.RoutingKey, Args: m.Arguments}}
	}
	var m amqp.QueueBind
	r.method(&m)
	return &Binding{Vhost: vhost, Binding: exchange.Binding{Source: m.Exchange,
		Destination: exchange.Destination{Name: m.Queue}, Key: m.RoutingKey, Args: m.Arguments}}
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

func appendBool(buf []byte, v bool) []byte {
	if v {
		return append(buf, 1)
	}
	return append(buf, 0)
}

// reader decodes; the first error sticks and later reads return zero values.
type reader struct {
	b   []byte
	err error
	ver byte // the version of a change list or snapshot (version)
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail(errors.New("truncated"))
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bool() bool { return r.byte() != 0 }

// version reads the version that opens a change list or snapshot: this
// one or an earlier one that still decodes.
func (r *reader) version() {
	v := r.byte()
	if r.err == nil && (v < 1 || v > codecVersion) {
		r.fail(fmt.Errorf("unknown metadata encoding version %d", v))
	}
	r.ver = v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad length"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errors.New("bad integer"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count, bounded by the bytes left (every element
// takes at least one).
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errors.New("count past the end"))
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail(errors.New("truncated"))
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) string() string { return string(r.bytes()) }

// method decodes the arguments of an AMQP method written with appendBytes.
func (r *reader) method(m interface{ DecodeArgs([]byte) error }) {
	b := r.bytes()
	if r.err != nil {
		return
	}
	if err := m.DecodeArgs(b); err != nil {
		r.fail(err)
	}
}
