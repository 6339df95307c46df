package cluster

import (
	"errors"
	"sync"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/queue"
)

// The home part of a link: this node serves its queues to the peer.
// Requests run on the link's reader goroutine, in order. Deliveries to
// the peer's consumers are numbered per link; the peer settles them by
// number. When the link breaks, the deliveries it still holds are
// requeued and its consumers removed.

// homeSide is a link's home part.
type homeSide struct {
	mu           sync.Mutex
	nextDelivery uint64
	deliveries   map[uint64]homeDelivery
	proxies      map[uint64]*proxyConsumer
	gone         bool // the link broke: nothing more is registered
	names        nameCache
}

// homeDelivery is an unsettled delivery the peer holds.
type homeDelivery struct {
	q broker.QueueHandle
	e broker.QueueEntry
}

func (h *homeSide) init() {
	h.deliveries = map[uint64]homeDelivery{}
	h.proxies = map[uint64]*proxyConsumer{}
}

// register numbers a delivery the peer must settle (0: the link broke).
func (h *homeSide) register(q broker.QueueHandle, e broker.QueueEntry) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return 0
	}
	h.nextDelivery++
	h.deliveries[h.nextDelivery] = homeDelivery{q: q, e: e}
	return h.nextDelivery
}

func (h *homeSide) forget(id uint64) {
	h.mu.Lock()
	delete(h.deliveries, id)
	h.mu.Unlock()
}

// queue returns the named queue if this node is its home.
// requestedQueue ends the decoding of a request about the queue vhost/name
// and returns that queue. When the frame is malformed it returns the
// decoding error; when this node has no such queue it answers request id
// so and returns nil and no error.
func (l *link) requestedQueue(fr *frameReader, id uint64, vhost, name string) (broker.QueueHandle, error) {
	if err := fr.done(); err != nil {
		return nil, err
	}
	q := l.homeQueue(vhost, name)
	if q == nil {
		l.reply(id, noQueue(vhost, name), nil)
	}
	return q, nil
}

func (l *link) homeQueue(vhost, name string) broker.QueueHandle {
	srv := l.ls.srv.Load()
	if srv == nil {
		return nil
	}
	return srv.HomeQueue(vhost, name)
}

// noQueue is the answer for a queue this node does not hold (deleted, or
// not this node's).
func noQueue(vhost, name string) error {
	return amqp.Errorf(amqp.NotFound, "no queue '%s' in vhost '%s'", name, vhost)
}

// noAnswer is the outcome handler of a publish that wants no reply.
func noAnswer(queue.PublishResult) {}

func (h *homeSide) onPublish(l *link, fr *frameReader) error {
	id := fr.uvarint()
	vhost, name := h.names.names(fr)
	data := fr.bytes()
	if err := fr.done(); err != nil {
		return err
	}
	answer := noAnswer
	if id != 0 {
		answer = func(res queue.PublishResult) {
			l.reply(id, nil, func(b []byte) []byte { return append(b, byte(res)) })
		}
	}
	m, err := decodeMessage(data)
	srv := l.ls.srv.Load()
	switch {
	case err != nil:
		l.ls.log.Error("undecodable message from another node", "peer", l.peer, "err", err)
		answer(queue.Rejected)
	case srv == nil:
		answer(queue.Rejected)
	default:
		srv.PublishHome(vhost, name, m, answer)
	}
	return nil
}

func (h *homeSide) onConsume(l *link, fr *frameReader) error {
	id, cid := fr.uvarint(), fr.uvarint()
	vhost, name := fr.string(), fr.string()
	flags := fr.byte()
	priority := fr.varint()
	credit := fr.uvarint()
	q, err := l.requestedQueue(fr, id, vhost, name)
	if q == nil {
		return err
	}
	p := &proxyConsumer{l: l, id: cid, q: q, noAck: flags&consumeNoAck != 0, credit: int64(min(credit, 1<<30))}
	h.mu.Lock()
	_, dup := h.proxies[cid]
	gone := h.gone
	if !gone && !dup {
		h.proxies[cid] = p
	}
	h.mu.Unlock()
	if gone {
		return nil // the link broke: nobody to serve (or to answer)
	}
	if dup {
		l.reply(id, errors.New("consumer id in use"), nil)
		return nil
	}
	err = q.AddConsumer(p, queue.ConsumerOptions{NoAck: p.noAck, Exclusive: flags&consumeExclusive != 0, Priority: int(priority)})
	if err != nil {
		h.mu.Lock()
		delete(h.proxies, cid)
		h.mu.Unlock()
		switch {
		case errors.Is(err, queue.ErrExclusiveConsumer):
			err = amqp.Errorf(amqp.AccessRefused, "queue '%s' in vhost '%s' in exclusive use", name, vhost)
		case errors.Is(err, queue.ErrQueueDeleted):
			err = noQueue(vhost, name)
		}
		l.reply(id, err, nil)
		return nil
	}
	// consume-ok first, then deliveries: until started the proxy refuses.
	l.reply(id, nil, nil)
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	q.Kick(p)
	return nil
}

func (h *homeSide) onCancel(fr *frameReader) error {
	cid := fr.uvarint()
	if err := fr.done(); err != nil {
		return err
	}
	h.mu.Lock()
	p := h.proxies[cid]
	delete(h.proxies, cid)
	h.mu.Unlock()
	if p != nil {
		p.q.RemoveConsumer(p)
	}
	return nil
}

func (h *homeSide) onCredit(fr *frameReader) error {
	cid, n := fr.uvarint(), fr.uvarint()
	if err := fr.done(); err != nil {
		return err
	}
	h.mu.Lock()
	p := h.proxies[cid]
	h.mu.Unlock()
	if p != nil {
		p.grant(int64(min(n, 1<<30)))
	}
	return nil
}

func (h *homeSide) onSettle(fr *frameReader) error {
	how := broker.Settlement(fr.byte())
	n := fr.uvarint()
	if n > uint64(len(fr.b)) {
		return errMalformed
	}
	ds := make([]homeDelivery, 0, n)
	h.mu.Lock()
	for range n {
		id := fr.uvarint()
		if d, ok := h.deliveries[id]; ok {
			delete(h.deliveries, id)
			ds = append(ds, d)
		}
	}
	h.mu.Unlock()
	if err := fr.done(); err != nil {
		return err
	}
	if how > broker.SettleReject {
		how = broker.SettleRequeue
	}
	settleGrouped(ds, how)
	return nil
}

// settleGrouped settles deliveries with their queues, a queue at a time.
func settleGrouped(ds []homeDelivery, how broker.Settlement) {
	done := make([]bool, len(ds))
	var entries []broker.QueueEntry
	for i := range ds {
		if done[i] {
			continue
		}
		entries = entries[:0]
		for j := i; j < len(ds); j++ {
			if !done[j] && ds[j].q == ds[i].q {
				entries = append(entries, ds[j].e)
				done[j] = true
			}
		}
		ds[i].q.Settle(how, entries)
	}
}

func (h *homeSide) onGet(l *link, fr *frameReader) error {
	id := fr.uvarint()
	vhost, name := fr.string(), fr.string()
	noAck := fr.flag()
	q, err := l.requestedQueue(fr, id, vhost, name)
	if q == nil {
		return err
	}
	e, remaining, ok := q.Get(noAck)
	if !ok {
		l.reply(id, nil, func(b []byte) []byte { return appendUvarint(append(b, 0), uint64(remaining)) })
		return nil
	}
	var did uint64
	if !noAck {
		if did = h.register(q, e); did == 0 {
			q.Settle(broker.SettleRequeue, []broker.QueueEntry{e})
			return nil
		}
	}
	m := e.Message()
	var encErr error
	l.reply(id, nil, func(b []byte) []byte {
		b = appendUvarint(append(b, 1), did)
		b = appendFlag(b, e.Redelivered())
		b = appendUvarint(b, uint64(remaining))
		return appendMessage(b, m, &encErr)
	})
	if encErr != nil {
		l.ls.log.Error("encoding a message for another node failed", "err", encErr)
	}
	return nil
}

func (h *homeSide) onPurge(l *link, fr *frameReader) error {
	id := fr.uvarint()
	vhost, name := fr.string(), fr.string()
	q, err := l.requestedQueue(fr, id, vhost, name)
	if q == nil {
		return err
	}
	n, err := q.Purge()
	if err != nil {
		l.reply(id, err, nil)
		return nil
	}
	l.reply(id, nil, func(b []byte) []byte { return appendUvarint(b, uint64(n)) })
	return nil
}

func (h *homeSide) onInfo(l *link, fr *frameReader) error {
	id := fr.uvarint()
	vhost, name := fr.string(), fr.string()
	touch := fr.flag()
	q, err := l.requestedQueue(fr, id, vhost, name)
	if q == nil {
		return err
	}
	if t, ok := q.(interface{ Touch() }); ok && touch {
		t.Touch()
	}
	info := q.Info()
	l.reply(id, nil, func(b []byte) []byte {
		for _, v := range [...]uint64{uint64(info.Ready), uint64(info.Unacked), uint64(info.Consumers), uint64(info.ReadyBytes), uint64(info.PagedOut)} {
			b = appendUvarint(b, v)
		}
		return appendString(b, info.Policy)
	})
	return nil
}

// lost runs when the link broke: the peer's consumers go and the
// deliveries it held are requeued.
func (h *homeSide) lost(*link) {
	h.mu.Lock()
	h.gone = true
	proxies := h.proxies
	deliveries := h.deliveries
	h.proxies, h.deliveries = map[uint64]*proxyConsumer{}, map[uint64]homeDelivery{}
	h.mu.Unlock()
	for _, p := range proxies {
		p.q.RemoveConsumer(p)
	}
	ds := make([]homeDelivery, 0, len(deliveries))
	for _, d := range deliveries {
		ds = append(ds, d)
	}
	settleGrouped(ds, broker.SettleRequeue)
}

// proxyConsumer is, on the home node, a consumer of another node: the
// queue delivers to it and it sends the deliveries over the link, as
// long as the consuming node has granted credit.
type proxyConsumer struct {
	l     *link
	id    uint64
	q     broker.QueueHandle
	noAck bool

	mu      sync.Mutex
	started bool // consume-ok was sent
	credit  int64
	blocked bool // refused a delivery: kick when credit comes
}

// Deliver implements broker.Consumer; it runs under the queue's lock.
func (p *proxyConsumer) Deliver(e broker.QueueEntry, redelivered bool) bool {
	p.mu.Lock()
	if !p.started || p.credit <= 0 {
		p.blocked = true
		p.mu.Unlock()
		return false
	}
	p.credit--
	p.mu.Unlock()
	var did uint64
	if !p.noAck {
		if did = p.l.home.register(p.q, e); did == 0 {
			return false // the link broke
		}
	}
	m := e.Message()
	var encErr error
	sent := false
	if start, ok := p.l.begin(); ok {
		b := appendUvarint(appendUvarint(append(p.l.wbuf, frameDeliver), p.id), did)
		b = appendFlag(b, redelivered)
		p.l.wbuf = appendMessage(b, m, &encErr)
		sent = p.l.end(start)
	}
	if !sent || encErr != nil {
		if did != 0 {
			p.l.home.forget(did)
		}
		if encErr != nil {
			p.l.ls.log.Error("encoding a message for another node failed", "err", encErr)
		}
		return false
	}
	return true
}

// QueueDeleted implements broker.Consumer: the consuming node is told.
func (p *proxyConsumer) QueueDeleted() {
	h := &p.l.home
	h.mu.Lock()
	if h.proxies[p.id] == p {
		delete(h.proxies, p.id)
	}
	h.mu.Unlock()
	p.l.send(func(b []byte) []byte { return appendUvarint(append(b, frameCancelled), p.id) })
}

// grant adds credit and kicks the queue if the proxy was refusing.
func (p *proxyConsumer) grant(n int64) {
	p.mu.Lock()
	p.credit += n
	kick := p.blocked && p.credit > 0
	if kick {
		p.blocked = false
	}
	p.mu.Unlock()
	if kick {
		p.q.Kick(p)
	}
}

// appendMessage appends a message as length-prefixed bytes in the
// store's encoding. An encoding failure is set in *err, and an empty
// message (which the receiver refuses) keeps the frame well formed.
func appendMessage(b []byte, m *queue.Message, err *error) []byte {
	at := len(b)
	out, e := m.AppendBinary(append(b, 0, 0, 0, 0, 0)) // room for the uvarint length, fixed below
	if e != nil {
		*err = e
		return append(b[:at], 0) // an empty message, which the receiver refuses
	}
	b = out
	n := len(b) - at - 5
	var lenBuf [5]byte
	k := putUvarint5(lenBuf[:], uint64(n))
	// Shift the message left over the unused part of the length room.
	copy(b[at:], lenBuf[:k])
	copy(b[at+k:], b[at+5:])
	return b[:len(b)-(5-k)]
}

// putUvarint5 writes v (< 2^35) as a uvarint and returns its length.
func putUvarint5(buf []byte, v uint64) int {
	i := 0
	for v >= 0x80 {
		buf[i] = byte(v) | 0x80
		v >>= 7
		i++
	}
	buf[i] = byte(v)
	return i + 1
}
