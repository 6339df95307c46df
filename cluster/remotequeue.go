package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/queue"
)

// The client part of a link: this node's clients use the peer's queues
// through remoteQueue handles. A remote consumer gets deliveries as the
// home node sends them, within the credit it granted: its prefetch (or
// linkDefaultCredit without one). It grants one more as each delivery is
// settled (or, without acks, as each is handed to the client), so a slow
// consumer or a slow link holds at most that many messages here.

// linkDefaultCredit is the credit of a remote consumer without a
// prefetch limit (or without acks).
const linkDefaultCredit = 400

// clientSide is a link's client part.
type clientSide struct {
	mu           sync.Mutex
	nextID       uint64
	calls        map[uint64]func(*frameReader, error)
	nextConsumer uint64
	consumers    map[uint64]*remoteConsumer
	gone         bool // the link broke: nothing more is registered
}

func (c *clientSide) init() {
	c.calls = map[uint64]func(*frameReader, error){}
	c.consumers = map[uint64]*remoteConsumer{}
}

// register records a reply handler under a new request id.
func (c *clientSide) register(h func(*frameReader, error)) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	c.calls[c.nextID] = h
	return c.nextID
}

func (c *clientSide) unregister(id uint64) func(*frameReader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.calls[id]
	delete(c.calls, id)
	return h
}

// addConsumer numbers a consumer; false when the link broke.
func (c *clientSide) addConsumer(rc *remoteConsumer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return false
	}
	c.nextConsumer++
	rc.id = c.nextConsumer
	c.consumers[rc.id] = rc
	return true
}

func (c *clientSide) removeConsumer(rc *remoteConsumer) {
	c.mu.Lock()
	if c.consumers[rc.id] == rc {
		delete(c.consumers, rc.id)
	}
	c.mu.Unlock()
}

func (c *clientSide) consumer(id uint64) *remoteConsumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consumers[id]
}

func (c *clientSide) onReply(fr *frameReader) error {
	id := fr.uvarint()
	status := fr.status()
	if fr.err != nil {
		return fr.err
	}
	if h := c.unregister(id); h != nil {
		h(fr, status)
	}
	return nil
}

func (c *clientSide) onDeliver(l *link, fr *frameReader) error {
	cid, did := fr.uvarint(), fr.uvarint()
	redelivered := fr.flag()
	data := fr.bytes()
	if err := fr.done(); err != nil {
		return err
	}
	var e *remoteEntry
	var err error
	if len(data) <= smallMessageBytes {
		// The entry, the message and its bytes in one allocation.
		se := &smallEntry{}
		e = &se.e
		e.m, err = se.sm.decode(data)
	} else {
		e = &remoteEntry{}
		e.m, err = decodeMessage(data)
	}
	if err != nil {
		l.ls.log.Error("undecodable delivery from another node, requeued there", "peer", l.peer, "err", err)
		l.settle(broker.SettleRequeue, []uint64{did})
		return nil
	}
	e.l, e.id, e.redelivered = l, did, redelivered
	rc := c.consumer(cid)
	if rc == nil {
		if did != 0 {
			l.settle(broker.SettleRequeue, []uint64{did})
		}
		return nil
	}
	e.rc = rc
	rc.deliver(e)
	return nil
}

func (c *clientSide) onCancelled(fr *frameReader) error {
	cid := fr.uvarint()
	if err := fr.done(); err != nil {
		return err
	}
	if rc := c.consumer(cid); rc != nil {
		c.removeConsumer(rc)
		rc.end()
	}
	return nil
}

// lost runs when the link broke: requests waiting for an answer fail and
// the consumers over it are cancelled (their clients get basic.cancel);
// the home node requeues what they held.
func (c *clientSide) lost(*link) {
	c.mu.Lock()
	c.gone = true
	calls, consumers := c.calls, c.consumers
	c.calls, c.consumers = map[uint64]func(*frameReader, error){}, map[uint64]*remoteConsumer{}
	c.mu.Unlock()
	for _, h := range calls {
		h(nil, errLinkDown)
	}
	for _, rc := range consumers {
		rc.end()
	}
}

// settle sends the settlement of deliveries (0s, no-ack ones, are left out).
func (l *link) settle(how broker.Settlement, ids []uint64) {
	n := 0
	for _, id := range ids {
		if id != 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	l.send(func(b []byte) []byte {
		b = appendUvarint(append(b, frameSettle, byte(how)), uint64(n))
		for _, id := range ids {
			if id != 0 {
				b = appendUvarint(b, id)
			}
		}
		return b
	})
}

// remoteEntry is a delivery from a queue on another node.
type remoteEntry struct {
	l           *link
	id          uint64 // the home's delivery number (0: no-ack, settled there)
	m           *queue.Message
	redelivered bool
	rc          *remoteConsumer // nil for basic.get
}

// smallEntry is a remoteEntry with room for a small message.
type smallEntry struct {
	e  remoteEntry
	sm smallMessage
}

// Message implements broker.QueueEntry.
func (e *remoteEntry) Message() *queue.Message { return e.m }

// Redelivered implements broker.QueueEntry.
func (e *remoteEntry) Redelivered() bool { return e.redelivered }

// remoteQueue is the broker.RemoteQueue of a queue whose home is another
// node: every operation goes over the link to that node.
type remoteQueue struct {
	ls  *links
	rec meta.Queue

	mu        sync.Mutex
	consumers map[broker.Consumer]*remoteConsumer
}

var _ broker.RemoteQueue = (*remoteQueue)(nil)

func newRemoteQueue(ls *links, rec meta.Queue) *remoteQueue {
	return &remoteQueue{ls: ls, rec: rec, consumers: map[broker.Consumer]*remoteConsumer{}}
}

// Name implements broker.QueueHandle.
func (q *remoteQueue) Name() string { return q.rec.Name }

// Node implements broker.RemoteQueue.
func (q *remoteQueue) Node() string { return q.rec.Node }

// down is the error for a queue whose home cannot be reached.
func (q *remoteQueue) down() error { return broker.HomeDownError(q.rec.Node, q.rec) }

// Available implements broker.RemoteQueue: the link is up, or can be
// dialed.
func (q *remoteQueue) Available() error {
	if q.ls.current(q.rec.Node) != nil {
		return nil
	}
	if _, err := q.ls.get(q.rec.Node); err != nil {
		return q.down()
	}
	return nil
}

// link returns the link to the queue's home, dialing it if needed.
func (q *remoteQueue) link() (*link, error) { return q.ls.get(q.rec.Node) }

// appendQueue appends the queue's vhost and name.
func (q *remoteQueue) appendQueue(b []byte) []byte {
	return appendString(appendString(b, q.rec.Vhost), q.rec.Name)
}

// Info implements broker.QueueHandle: the declaration, with the home
// node's counts (zero when it cannot be reached).
func (q *remoteQueue) Info() broker.QueueInfo {
	info := broker.QueueInfo{Vhost: q.rec.Vhost, Name: q.rec.Name, Durable: q.rec.Durable, AutoDelete: q.rec.AutoDelete,
		Arguments: q.rec.Args, Node: q.rec.Node}
	l, err := q.link()
	if err != nil {
		return info
	}
	err = l.callWait(context.Background(), frameInfo, func(b []byte) []byte {
		return appendFlag(q.appendQueue(b), false)
	}, func(fr *frameReader) error {
		info.Ready, info.Unacked, info.Consumers = int(fr.uvarint()), int(fr.uvarint()), int(fr.uvarint())
		info.ReadyBytes, info.PagedOut = int64(fr.uvarint()), int(fr.uvarint())
		info.Policy = fr.string()
		return fr.done()
	}, nil)
	if err != nil {
		q.ls.log.Debug("queue info from its home node failed", "queue", q.rec.Name, "node", q.rec.Node, "err", err)
	}
	return info
}

// Touch implements the declare's touch: it resets the queue's x-expires
// countdown on its home node (the answer is not awaited).
func (q *remoteQueue) Touch() {
	if l, err := q.link(); err == nil {
		l.call(frameInfo, func(b []byte) []byte { return appendFlag(q.appendQueue(b), true) }, func(*frameReader, error) {})
	}
}

// Counts implements broker.QueueHandle (a round trip to the home node).
func (q *remoteQueue) Counts() (ready, unacked, consumers int) {
	info := q.Info()
	return info.Ready, info.Unacked, info.Consumers
}

// MessageStats implements broker.QueueHandle: the counters are kept on
// the home node.
func (q *remoteQueue) MessageStats() broker.MessageStats { return broker.MessageStats{} }

// appendPublish appends a publish request's queue and message.
func (q *remoteQueue) appendPublish(b []byte, m *queue.Message, err *error) []byte {
	return appendMessage(q.appendQueue(b), m, err)
}

// Publish implements broker.QueueHandle: the message is sent to the home
// node without waiting for its answer; Rejected when it cannot be
// reached.
func (q *remoteQueue) Publish(m *queue.Message) queue.PublishResult {
	l, err := q.link()
	if err != nil {
		return queue.Rejected
	}
	var encErr error
	sent := false
	if start, ok := l.begin(); ok {
		l.wbuf = q.appendPublish(appendUvarint(append(l.wbuf, framePublish), 0), m, &encErr)
		sent = l.end(start)
	}
	if !sent || encErr != nil {
		return queue.Rejected
	}
	return queue.Accepted
}

// PublishConfirm implements broker.RemoteQueue.
func (q *remoteQueue) PublishConfirm(m *queue.Message, done func(queue.PublishResult)) {
	l, err := q.link()
	if err != nil {
		done(queue.Rejected)
		return
	}
	var encErr error
	l.call(framePublish, func(b []byte) []byte {
		return q.appendPublish(b, m, &encErr)
	}, func(fr *frameReader, err error) {
		res := queue.Rejected
		if err == nil {
			res = queue.PublishResult(fr.byte())
			if fr.done() != nil {
				res = queue.Rejected
			}
		}
		done(res)
	})
}

// WaitRoom implements broker.RemoteQueue.
func (q *remoteQueue) WaitRoom() {
	if l := q.ls.current(q.rec.Node); l != nil {
		l.waitRoom()
	}
}

// Get implements broker.QueueHandle (basic.get, a round trip).
func (q *remoteQueue) Get(noAck bool) (broker.QueueEntry, int, bool) {
	l, err := q.link()
	if err != nil {
		return nil, 0, false
	}
	var e *remoteEntry
	var remaining int
	err = l.callWait(context.Background(), frameGet, func(b []byte) []byte {
		return appendFlag(q.appendQueue(b), noAck)
	}, func(fr *frameReader) error {
		if !fr.flag() {
			remaining = int(fr.uvarint())
			return fr.done()
		}
		ge := &remoteEntry{l: l, id: fr.uvarint(), redelivered: fr.flag()}
		remaining = int(fr.uvarint())
		data := fr.bytes()
		if err := fr.done(); err != nil {
			return err
		}
		m, err := queue.UnmarshalMessage(data)
		if err != nil {
			l.settle(broker.SettleRequeue, []uint64{ge.id})
			return err
		}
		ge.m = m
		e = ge
		return nil
	}, func(fr *frameReader) {
		// The client gave up waiting: a message taken for it goes back.
		if fr.flag() {
			l.settle(broker.SettleRequeue, []uint64{fr.uvarint()})
		}
	})
	if err != nil || e == nil {
		if err != nil {
			q.ls.log.Debug("basic.get from the home node failed", "queue", q.rec.Name, "node", q.rec.Node, "err", err)
		}
		return nil, remaining, false
	}
	return e, remaining, true
}

// Settle implements broker.QueueHandle: the settlements go to the home
// node (those of a link that broke are dropped: the home requeued them),
// and consumers get their credit back.
func (q *remoteQueue) Settle(how broker.Settlement, entries []broker.QueueEntry) {
	var ids []uint64
	var l *link
	credit := map[*remoteConsumer]int{}
	flush := func() {
		if l != nil && len(ids) > 0 {
			l.settle(how, ids)
		}
		ids = ids[:0]
	}
	for _, qe := range entries {
		e, ok := qe.(*remoteEntry)
		if !ok || e.id == 0 {
			continue
		}
		if e.l != l {
			flush()
			l = e.l
		}
		ids = append(ids, e.id)
		if e.rc != nil {
			credit[e.rc]++
		}
	}
	flush()
	for rc, n := range credit {
		rc.settled(n)
	}
}

// Purge implements broker.QueueHandle.
func (q *remoteQueue) Purge() (int, error) {
	l, err := q.link()
	if err != nil {
		return 0, err
	}
	var n int
	if err := l.callWait(context.Background(), framePurge, q.appendQueue, func(fr *frameReader) error {
		n = int(fr.uvarint())
		return fr.done()
	}, nil); err != nil {
		q.ls.log.Debug("purge on the home node failed", "queue", q.rec.Name, "node", q.rec.Node, "err", err)
		return 0, err
	}
	return n, nil
}

// Delete implements broker.QueueHandle: this node drops the handle (the
// home node deletes the queue); its consumers here are cancelled.
func (q *remoteQueue) Delete() int {
	q.mu.Lock()
	rcs := make([]*remoteConsumer, 0, len(q.consumers))
	for _, rc := range q.consumers {
		rcs = append(rcs, rc)
	}
	q.mu.Unlock()
	for _, rc := range rcs {
		rc.l.client.removeConsumer(rc)
		rc.l.send(func(b []byte) []byte { return appendUvarint(append(b, frameCancel), rc.id) })
		rc.end()
	}
	return 0
}

// AddConsumer implements broker.QueueHandle: the home node registers a
// consumer that delivers over the link. Its errors are the home node's
// (*amqp.Error), or the 404 for a home that cannot be reached.
func (q *remoteQueue) AddConsumer(c broker.Consumer, opts queue.ConsumerOptions) error {
	l, err := q.link()
	if err != nil {
		return q.down()
	}
	window := opts.Prefetch
	if window <= 0 || opts.NoAck {
		window = linkDefaultCredit
	}
	rc := &remoteConsumer{q: q, c: c, l: l, noAck: opts.NoAck, window: window}
	q.mu.Lock()
	if _, dup := q.consumers[c]; dup {
		q.mu.Unlock()
		return queue.ErrConsumerExists
	}
	q.consumers[c] = rc
	q.mu.Unlock()
	if !l.client.addConsumer(rc) {
		q.forget(rc)
		return q.down()
	}
	var flags byte
	if opts.NoAck {
		flags |= consumeNoAck
	}
	if opts.Exclusive {
		flags |= consumeExclusive
	}
	err = l.callWait(context.Background(), frameConsume, func(b []byte) []byte {
		b = q.appendQueue(appendUvarint(b, rc.id))
		b = binary.AppendVarint(append(b, flags), int64(opts.Priority))
		return appendUvarint(b, uint64(window))
	}, func(fr *frameReader) error { return fr.done() }, nil)
	if err != nil {
		l.client.removeConsumer(rc)
		q.forget(rc)
		l.send(func(b []byte) []byte { return appendUvarint(append(b, frameCancel), rc.id) })
		if errors.Is(err, errLinkDown) {
			return q.down()
		}
		return err
	}
	return nil
}

// RemoveConsumer implements broker.QueueHandle: the home node stops
// delivering; deliveries that were on their way go back to its queue.
func (q *remoteQueue) RemoveConsumer(c broker.Consumer) {
	q.mu.Lock()
	rc := q.consumers[c]
	delete(q.consumers, c)
	q.mu.Unlock()
	if rc == nil {
		return
	}
	rc.l.client.removeConsumer(rc)
	rc.l.send(func(b []byte) []byte { return appendUvarint(append(b, frameCancel), rc.id) })
	rc.mu.Lock()
	rc.gone = true
	pending := rc.pending
	rc.pending = nil
	rc.mu.Unlock()
	ids := make([]uint64, 0, len(pending))
	for _, e := range pending {
		ids = append(ids, e.id)
	}
	rc.l.settle(broker.SettleRequeue, ids)
}

// Kick implements broker.QueueHandle: c may take the deliveries it refused.
func (q *remoteQueue) Kick(c broker.Consumer) {
	q.mu.Lock()
	rc := q.consumers[c]
	q.mu.Unlock()
	if rc != nil {
		rc.drain()
	}
}

// forget drops rc from the queue's consumers.
func (q *remoteQueue) forget(rc *remoteConsumer) {
	q.mu.Lock()
	if q.consumers[rc.c] == rc {
		delete(q.consumers, rc.c)
	}
	q.mu.Unlock()
}

// remoteConsumer is a broker consumer of a queue on another node. The
// link's reader hands it deliveries; those the consumer refuses (no
// credit in its channel yet) wait in pending, in order, until a kick.
type remoteConsumer struct {
	q      *remoteQueue
	c      broker.Consumer
	l      *link
	id     uint64
	noAck  bool
	window int

	mu      sync.Mutex // held while calling c.Deliver, as a queue's lock is
	pending []*remoteEntry
	owed    int // no-ack deliveries handed on whose credit is not returned yet
	gone    bool
}

// deliver hands a delivery to the consumer, or keeps it for later.
func (rc *remoteConsumer) deliver(e *remoteEntry) {
	rc.mu.Lock()
	if rc.gone {
		rc.mu.Unlock()
		rc.l.settle(broker.SettleRequeue, []uint64{e.id})
		return
	}
	if len(rc.pending) == 0 && rc.c.Deliver(e, e.redelivered) {
		rc.accepted()
	} else {
		rc.pending = append(rc.pending, e)
	}
	rc.mu.Unlock()
}

// drain hands on the deliveries the consumer refused, until it refuses
// again.
func (rc *remoteConsumer) drain() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for len(rc.pending) > 0 && !rc.gone {
		e := rc.pending[0]
		if !rc.c.Deliver(e, e.redelivered) {
			return
		}
		rc.pending[0] = nil
		rc.pending = rc.pending[1:]
		rc.accepted()
	}
	if len(rc.pending) == 0 {
		rc.pending = nil
	}
}

// accepted counts a delivery handed on; without acks its credit goes
// back in batches of half the window. Under rc.mu.
func (rc *remoteConsumer) accepted() {
	if !rc.noAck {
		return
	}
	rc.owed++
	if rc.owed >= max(1, rc.window/2) {
		rc.grant(rc.owed)
		rc.owed = 0
	}
}

// settled returns the credit of n deliveries the client settled.
func (rc *remoteConsumer) settled(n int) {
	rc.mu.Lock()
	gone := rc.gone
	rc.mu.Unlock()
	if !gone {
		rc.grant(n)
	}
}

func (rc *remoteConsumer) grant(n int) {
	rc.l.send(func(b []byte) []byte { return appendUvarint(appendUvarint(append(b, frameCredit), rc.id), uint64(n)) })
}

// end cancels the consumer from the home side (its queue was deleted, or
// the link broke): the client gets basic.cancel.
func (rc *remoteConsumer) end() {
	rc.mu.Lock()
	if rc.gone {
		rc.mu.Unlock()
		return
	}
	rc.gone = true
	rc.pending = nil
	rc.mu.Unlock()
	rc.q.forget(rc)
	rc.c.QueueDeleted()
}
