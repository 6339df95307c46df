package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/store"
)

// Message ids are unique across the nodes of a cluster: the node id in the
// high bits, the node's counter in the low ones, bit 63 left free for the
// pager's pagedBit (store/ids.go has the layout and why it is split so).
//
// The counter must never hand out an id twice, even after a crash and
// even when every message was consumed (the store then holds none of the
// node's ids), since another node may still hold a copy forwarded to it.
// So the node keeps a mark in the store ahead of its counter: at start it
// continues above the mark (and above the largest id of its own in the
// store), sets the mark a lease further and only then hands ids out; once
// half a lease is used it moves the mark on in the background. A publisher
// waits for the disk only if a whole lease went by before that write
// finished. A restart skips what is left of the lease, at most 1.5 leases.

// idLease is how many ids a mark reserves: 107 s of 10 million messages a
// second, so the background write has some 50 s to finish, and the counter
// (2^51) has room for 1.4 million restarts that each skip 1.5 leases.
const idLease = 1 << 30

// idStore is the part of the store that keeps the node's id and the mark
// of its message counter.
type idStore interface {
	NodeID() uint16
	SetNodeID(id uint16) error
	IDMark(node uint16) (uint64, error)
	SetIDMark(node uint16, mark uint64) error
	MaxMessageID(node uint16) (uint64, error)
}

// msgIDs hands out the node's message ids. next is safe for concurrent use
// and takes no lock unless the mark must move.
type msgIDs struct {
	st    idStore
	log   *slog.Logger
	node  uint16
	base  uint64 // the node's part of each id
	lease uint64

	last      atomic.Uint64 // the counter last handed out
	extendAt  atomic.Uint64 // handing out this counter or a later one moves the mark
	limit     atomic.Uint64 // the mark on disk: counters up to it may be handed out
	extending atomic.Bool   // a background extension runs
	mu        sync.Mutex    // serialises extensions
}

// init sets the node id (node, or the store's own when 0) and restores the
// counter above every id the node may have handed out before.
func (a *msgIDs) init(st idStore, node uint16, lease uint64, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a.st, a.log, a.lease = st, log, lease
	if node == 0 {
		node = st.NodeID()
	} else if node != st.NodeID() {
		if err := st.SetNodeID(node); err != nil {
			return fmt.Errorf("set the node id to %d: %w", node, err)
		}
	}
	a.node, a.base = node, store.MessageID(node, 0)
	mark, err := st.IDMark(node)
	if err != nil {
		return fmt.Errorf("restore the message id counter: %w", err)
	}
	maxID, err := st.MaxMessageID(node)
	if err != nil {
		return fmt.Errorf("restore the message id counter: %w", err)
	}
	last := max(mark, store.CounterOf(maxID))
	if last > store.MaxCounter-lease {
		return fmt.Errorf("the message ids of node %d are used up (counter at %d); give the node another id", node, last)
	}
	if err := st.SetIDMark(node, last+lease); err != nil {
		return fmt.Errorf("reserve message ids: %w", err)
	}
	a.last.Store(last)
	a.limit.Store(last + lease)
	a.extendAt.Store(last + lease - lease/2)
	return nil
}

// next returns a new message id.
func (a *msgIDs) next() uint64 {
	c := a.last.Add(1)
	if c >= a.extendAt.Load() {
		a.reserve(c)
	}
	return a.base | c
}

// reserve moves the mark on for counter c: in the background while c is
// covered by the mark, else before c may be handed out.
func (a *msgIDs) reserve(c uint64) {
	if c <= a.limit.Load() {
		if a.extending.CompareAndSwap(false, true) {
			go func() {
				defer a.extending.Store(false)
				a.extend(c)
			}()
		}
		return
	}
	a.extend(c)
}

// extend sets the mark a lease past c unless another extension did so.
// It panics when the counter is used up: an id made past it would carry
// another node's id (init refuses to start a lease short of that).
func (a *msgIDs) extend(c uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c < a.extendAt.Load() {
		return
	}
	if c > store.MaxCounter {
		panic(fmt.Sprintf("warren: the message ids of node %d are used up", a.node))
	}
	mark := min(c+a.lease, store.MaxCounter)
	if err := a.st.SetIDMark(a.node, mark); err != nil && !errors.Is(err, store.ErrClosed) {
		// The ids stay usable; only a restart after this failure could
		// hand some of them out again.
		a.log.Error("storing the message id mark failed", "node", a.node, "mark", mark, "err", err)
	}
	a.limit.Store(mark)
	if mark == store.MaxCounter {
		a.extendAt.Store(store.MaxCounter + 1) // only running out calls extend again
	} else {
		a.extendAt.Store(mark - a.lease/2)
	}
}

// newMessageID returns a new id for a message published on this node (by
// a client, the management API or dead-lettering).
func (s *Server) newMessageID() uint64 { return s.ids.next() }

// NodeID is this node's id (1..store.MaxNodeID), part of every message id
// it makes: the data dir's own, drawn when it was created, unless
// Config.NodeID set another.
func (s *Server) NodeID() uint16 { return s.ids.node }
