package broker

import (
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/store"
)

// pagedBit marks a token of a message written by PageOut (a transient
// message, or one not stored for this queue); tokens without it are the
// ids of messages the store already holds for the queue.
const pagedBit = 1 << 63

// No message id has pagedBit set: store.MaxID is below it (this constant
// would overflow otherwise, and the build fail).
const _ uint64 = pagedBit - 1 - store.MaxID

// queuePager pages one queue's ready messages to the store. A persistent
// message of a durable queue is on disk already and pages out for free;
// any other is written to the store's paged space, which a restart drops,
// but only under memory pressure (or when the queue must page it to keep
// its order): a transient backlog stays in memory while memory allows.
//
// PageIn runs without the queue's lock and may overlap PageOut, Discard
// and the PageIn of another priority level, so it keeps no state here.
type queuePager struct {
	srv *Server
	q   *localQueue
}

// PageOut returns m's token, writing m to the store when it is not there.
func (p *queuePager) PageOut(m *queue.Message, force bool) (uint64, bool) {
	if m.Persistent() && p.q.durable {
		return m.ID, true
	}
	if !force && !p.srv.memoryPressure.Load() {
		return 0, false
	}
	if sp, ok := p.srv.storeSpace(); ok && sp.Refusing {
		return 0, false // the disk is full: the message stays in memory
	}
	data, err := m.MarshalBinary()
	if err != nil {
		p.srv.log.Error("encode a message to page it out", "queue", p.q.Name(), "err", err)
		return 0, false
	}
	p.srv.store.PageOut(p.q.storeKey, m.ID, data)
	return m.ID | pagedBit, true
}

// PageIn reads the messages of tokens back from the store.
func (p *queuePager) PageIn(tokens []uint64, fn func(i int, m *queue.Message, redelivered bool)) {
	keys := make([]store.MessageKey, len(tokens))
	for i, t := range tokens {
		keys[i] = store.MessageKey{ID: t &^ pagedBit, Paged: t&pagedBit != 0}
	}
	found := 0
	var paged []uint64 // read back: their paged copies go (a restart drops them anyway)
	err := p.srv.store.ReadMessages(p.q.storeKey, keys, func(i int, data []byte, delivered bool) {
		m, err := queue.UnmarshalMessage(data)
		if err != nil {
			p.srv.log.Error("decode a paged-out message", "queue", p.q.Name(), "id", keys[i].ID, "err", err)
			return
		}
		m.ID = keys[i].ID
		if keys[i].Paged {
			paged = append(paged, m.ID)
		}
		found++
		fn(i, m, delivered)
	})
	p.srv.store.RemovePaged(p.q.storeKey, paged)
	if err != nil {
		p.srv.log.Error("read paged-out messages", "queue", p.q.Name(), "err", err)
	}
	if lost := len(tokens) - found; lost > 0 {
		p.srv.log.Error("paged-out messages could not be read back and are lost", "queue", p.q.Name(), "count", lost)
	}
}

// Discard removes paged-out messages from the store, in two bulk
// removals. It reuses tokens.
func (p *queuePager) Discard(tokens []uint64) {
	stored, paged := tokens[:0], []uint64(nil)
	for _, t := range tokens {
		if t&pagedBit != 0 {
			paged = append(paged, t&^pagedBit)
		} else {
			stored = append(stored, t)
		}
	}
	p.srv.store.RemoveMessages(p.q.storeKey, stored)
	p.srv.store.RemovePaged(p.q.storeKey, paged)
}
