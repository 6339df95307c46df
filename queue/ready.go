package queue

import "math/bits"

// readyStore holds a queue's ready messages: one sub-queue per priority
// level (a single level without priorities), served highest level first,
// each in seq order. Entries published go to the back of their level;
// requeued ones go back to their original position. Past the paging bound,
// the back of a level is paged out (paging.go). count, bytes and expiring
// include the paged-out messages.
type readyStore struct {
	levels   []readyLevel // indexed by priority
	nonEmpty [4]uint64    // bit p set when levels[p] has messages
	count    int
	bytes    int64
	expiring int // messages with a deadline

	q          *Queue
	paging     Paging
	pagedCount int   // messages paged out
	pagedBytes int64 // their body bytes
}

// readyLevel is one priority level: entries in publish order, merged with a
// min-heap (by seq) of the requeued ones, then the messages being read
// back, then the paged-out messages.
type readyLevel struct {
	fifo     entryRing
	requeued entryHeap
	reading  *pageRead // read in progress of the level's first paged-out messages
	paged    refQueue
}

func newReadyStore(q *Queue, maxPriority uint8) readyStore {
	return readyStore{q: q, levels: make([]readyLevel, int(maxPriority)+1)}
}

func (r *readyStore) len() int { return r.count }

// push adds a newly published entry at the back of its level, or pages it
// out.
func (r *readyStore) push(e *Entry) {
	if r.pageOut(e) {
		return
	}
	r.levels[e.priority].fifo.pushBack(e)
	r.added(e)
}

// pushRequeued puts a requeued entry back at its original position.
func (r *readyStore) pushRequeued(e *Entry) {
	r.levels[e.priority].requeued.push(e)
	r.added(e)
}

func (r *readyStore) added(e *Entry) {
	r.nonEmpty[e.priority>>6] |= 1 << (e.priority & 63)
	r.count++
	r.bytes += int64(e.msg.Size())
	if e.expiresAt != noDeadline {
		r.expiring++
	}
}

// topLevel is the highest non-empty priority level, or -1.
func (r *readyStore) topLevel() int {
	for w := len(r.nonEmpty) - 1; w >= 0; w-- {
		if r.nonEmpty[w] != 0 {
			return w*64 + 63 - bits.LeadingZeros64(r.nonEmpty[w])
		}
	}
	return -1
}

// peek returns the next entry to deliver, or nil when there is none or the
// next one is being read back.
func (r *readyStore) peek() *Entry {
	_, e, _ := r.next()
	return e
}

// next returns the next entry to deliver and its level; or, when the
// highest non-empty level has nothing left in memory, the read of its
// paged-out messages to wait for; or -1, nil, nil when the store is empty.
func (r *readyStore) next() (int, *Entry, *pageRead) {
	for {
		p := r.topLevel()
		if p < 0 {
			return -1, nil, nil
		}
		if e, rd := r.head(p); e != nil || rd != nil {
			return p, e, rd
		}
		r.clearIfEmpty(p) // not reached: an empty level has its bit cleared
	}
}

// head returns level p's first entry in memory. When it has none, it
// returns the read of the level's paged-out messages (started if need be)
// instead, or nil, nil when the level is empty.
func (r *readyStore) head(p int) (*Entry, *pageRead) {
	l := &r.levels[p]
	if e := l.peek(); e != nil {
		return e, nil
	}
	r.startRead(p)
	return nil, l.reading
}

// pop removes and returns the next entry to deliver, or nil when there is
// none or the next one is being read back.
func (r *readyStore) pop() *Entry {
	e, _ := r.popOrWait()
	return e
}

// popOrWait removes and returns the next entry to deliver; when it is
// being read back it returns the read to wait for instead.
func (r *readyStore) popOrWait() (*Entry, *pageRead) {
	p, e, rd := r.next()
	if e == nil {
		return nil, rd
	}
	return r.popLevel(p), nil
}

// popLevel removes level p's first entry; head(p) must have returned it.
// A level with paged-out messages starts reading them back once its memory
// is down to readAhead entries.
func (r *readyStore) popLevel(p int) *Entry {
	l := &r.levels[p]
	e := l.pop()
	if l.fifo.n <= readAhead {
		r.startRead(p)
	}
	r.clearIfEmpty(p)
	r.count--
	r.bytes -= int64(e.msg.Size())
	if e.expiresAt != noDeadline {
		r.expiring--
	}
	return e
}

// clearIfEmpty clears level p's bit when it holds nothing, in memory or
// paged out.
func (r *readyStore) clearIfEmpty(p int) {
	if l := &r.levels[p]; l.fifo.n == 0 && len(l.requeued) == 0 && l.reading == nil && l.paged.n == 0 {
		r.nonEmpty[p>>6] &^= 1 << (p & 63)
	}
}

// eachLevel calls fn with each non-empty level, highest first, until it
// returns false. fn may empty the level it is given.
func (r *readyStore) eachLevel(fn func(p int) bool) {
	for w := len(r.nonEmpty) - 1; w >= 0; w-- {
		word := r.nonEmpty[w]
		for word != 0 {
			b := 63 - bits.LeadingZeros64(word)
			word &^= 1 << b
			if !fn(w*64 + b) {
				return
			}
		}
	}
}

// expireHeads removes, from the head of every level, the entries whose
// deadline is at or before now, and passes them to fn. As in RabbitMQ's
// classic queues only heads expire: an entry behind one with a later
// deadline waits, and so do messages being read back (they expire once
// installed).
func (r *readyStore) expireHeads(now int64, fn func(*Entry)) {
	if r.expiring == 0 {
		return
	}
	r.eachLevel(func(p int) bool {
		for {
			h, _ := r.head(p)
			if h == nil || h.expiresAt > now {
				return true
			}
			fn(r.popLevel(p))
		}
	})
}

// nextDeadline is the earliest deadline among the level heads in memory,
// or noDeadline. (Installing read-back messages arms the timer again.)
func (r *readyStore) nextDeadline() int64 {
	next := int64(noDeadline)
	if r.expiring == 0 {
		return next
	}
	r.eachLevel(func(p int) bool {
		if h, _ := r.head(p); h != nil && h.expiresAt < next {
			next = h.expiresAt
		}
		return true
	})
	return next
}

// drain removes every message: the entries in memory go to fn, highest
// level first, and the tokens of the paged-out ones are returned.
func (r *readyStore) drain(fn func(*Entry)) []uint64 {
	tokens := r.drainPaged()
	r.eachLevel(func(p int) bool {
		for r.levels[p].peek() != nil {
			fn(r.popLevel(p))
		}
		return true
	})
	return tokens
}

func (l *readyLevel) peek() *Entry {
	f := l.fifo.front()
	if len(l.requeued) > 0 && (f == nil || l.requeued[0].seq < f.seq) {
		return l.requeued[0]
	}
	return f
}

func (l *readyLevel) pop() *Entry {
	f := l.fifo.front()
	if len(l.requeued) > 0 && (f == nil || l.requeued[0].seq < f.seq) {
		return l.requeued.pop()
	}
	return l.fifo.popFront()
}

// entryRing is a growable ring buffer of entries (a FIFO).
type entryRing struct {
	buf  []*Entry // len is a power of two, or zero
	head int
	n    int
}

// minRingShrink is the capacity below which a ring is never shrunk.
const minRingShrink = 64

func (q *entryRing) pushBack(e *Entry) {
	if q.n == len(q.buf) {
		q.resize(max(2*len(q.buf), 8))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = e
	q.n++
}

func (q *entryRing) front() *Entry {
	if q.n == 0 {
		return nil
	}
	return q.buf[q.head]
}

func (q *entryRing) popFront() *Entry {
	if q.n == 0 {
		return nil
	}
	e := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	if len(q.buf) > minRingShrink && q.n < len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
	return e
}

func (q *entryRing) resize(size int) {
	buf := make([]*Entry, size)
	for i := 0; i < q.n; i++ {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}

// entryHeap is a min-heap of entries by seq.
type entryHeap []*Entry

func (h *entryHeap) push(e *Entry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if s[parent].seq <= s[i].seq {
			break
		}
		s[parent], s[i] = s[i], s[parent]
		i = parent
	}
}

func (h *entryHeap) pop() *Entry {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = nil
	s = s[:last]
	i := 0
	for {
		smallest, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s[l].seq < s[smallest].seq {
			smallest = l
		}
		if r < len(s) && s[r].seq < s[smallest].seq {
			smallest = r
		}
		if smallest == i {
			break
		}
		s[i], s[smallest] = s[smallest], s[i]
		i = smallest
	}
	if len(s) == 0 && cap(s) > minRingShrink {
		s = nil // release a large backing array once empty
	}
	*h = s
	return top
}
