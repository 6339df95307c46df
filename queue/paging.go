package queue

// Paging keeps a queue's memory bounded however long it grows. Past a
// bound, ready messages are not kept as entries: the queue hands them to a
// Pager (which writes them to disk unless they are stored already) and
// keeps only a token per message, plus its deadline when it has one, in
// blocks of refBlockSize. Each priority level pages on its own: once a
// level has paged-out messages, later publishes to it are paged out too,
// so the entries in memory always come before the paged ones and order is
// kept. When a level runs out of entries in memory, the queue reads its
// next pageInBatch messages back.

// Pager moves ready messages out of memory and back for one queue. Its
// methods are called with the queue's lock held, so they must not call
// into the queue.
type Pager interface {
	// PageOut makes m readable by PageIn and returns the token to read it
	// with, or false when it cannot or would rather not (the message then
	// stays in memory). With force, the queue needs m out of memory to
	// keep its order: only a failure keeps it in.
	PageOut(m *Message, force bool) (token uint64, ok bool)
	// PageIn reads the messages of tokens and calls fn, in order, for
	// each one it finds (i indexes tokens), with whether it was delivered
	// before (a restart remembers it). A message it cannot read is left
	// out (and logged by the Pager).
	PageIn(tokens []uint64, fn func(i int, m *Message, redelivered bool))
	// Discard drops paged-out messages that leave the queue without being
	// read back (purge, delete). It may keep or reuse tokens.
	Discard(tokens []uint64)
}

// Paging configures how much of a queue stays in memory.
type Paging struct {
	Pager Pager
	// MaxMessages and MaxBytes bound the ready messages (and their body
	// bytes) kept in memory; 0 means no bound of that kind.
	MaxMessages int
	MaxBytes    int64
}

// DefaultPaging bounds each queue to 10,000 ready messages or 16 MiB of
// bodies in memory.
func DefaultPaging(p Pager) Paging {
	return Paging{Pager: p, MaxMessages: 10000, MaxBytes: 16 << 20}
}

// refBlockSize is how many tokens one block of a refQueue holds.
const refBlockSize = 4096

// pageInBatch is how many messages are read back at a time.
const pageInBatch = 256

// unknownDeadline marks a restored message whose deadline is computed when
// it is read back (its expiration property is not known before).
const unknownDeadline = -1

// refBlock is a run of paged-out messages: their tokens and, once one of
// them has a deadline, the deadlines of all.
type refBlock struct {
	tokens    [refBlockSize]uint64
	deadlines *[refBlockSize]int64
}

// refQueue is a FIFO of paged-out messages in blocks, 8 bytes a message
// (16 with deadlines).
type refQueue struct {
	blocks []*refBlock
	head   int // index of the first token in blocks[0]
	n      int
}

func (r *refQueue) push(token uint64, deadline int64) {
	i := (r.head + r.n) % refBlockSize
	if i == 0 && (r.n > 0 || len(r.blocks) == 0) {
		r.blocks = append(r.blocks, new(refBlock))
	}
	b := r.blocks[len(r.blocks)-1]
	b.tokens[i] = token
	if deadline != noDeadline && b.deadlines == nil {
		b.deadlines = new([refBlockSize]int64)
		for j := range b.deadlines {
			b.deadlines[j] = noDeadline
		}
	}
	if b.deadlines != nil {
		b.deadlines[i] = deadline
	}
	r.n++
}

// pop removes up to len(tokens) messages from the front into tokens and
// deadlines and returns how many.
func (r *refQueue) pop(tokens []uint64, deadlines []int64) int {
	k := 0
	for k < len(tokens) && r.n > 0 {
		b := r.blocks[0]
		tokens[k] = b.tokens[r.head]
		deadlines[k] = noDeadline
		if b.deadlines != nil {
			deadlines[k] = b.deadlines[r.head]
		}
		k++
		r.n--
		r.head++
		if r.head == refBlockSize || r.n == 0 {
			r.blocks[0] = nil
			r.blocks = r.blocks[1:]
			r.head = 0
		}
	}
	if r.n == 0 {
		r.blocks, r.head = nil, 0
	}
	return k
}

// pageOut tries to keep e out of memory and reports whether it did: when
// the queue pages and either e's level already has paged-out messages or
// memory is at its bound.
func (r *readyStore) pageOut(e *Entry) bool {
	pg := &r.paging
	if pg.Pager == nil {
		return false
	}
	l := &r.levels[e.priority]
	if l.paged.n == 0 &&
		(pg.MaxMessages <= 0 || r.count-r.pagedCount < pg.MaxMessages) &&
		(pg.MaxBytes <= 0 || r.bytes-r.pagedBytes < pg.MaxBytes) {
		return false
	}
	token, ok := pg.Pager.PageOut(e.msg, l.paged.n > 0)
	if !ok {
		return false
	}
	r.addPaged(int(e.priority), token, int64(e.msg.Size()), e.expiresAt)
	return true
}

// addPaged records a paged-out message at the back of level p.
func (r *readyStore) addPaged(p int, token uint64, size, deadline int64) {
	r.levels[p].paged.push(token, deadline)
	r.nonEmpty[p>>6] |= 1 << (p & 63)
	r.count++
	r.pagedCount++
	r.bytes += size
	r.pagedBytes += size
	if deadline != noDeadline {
		r.expiring++
	}
}

// fill reads level p's next paged-out messages back into memory when it
// has none left there. The queue's lock is held.
func (r *readyStore) fill(p int) {
	l := &r.levels[p]
	if l.fifo.n > 0 {
		return
	}
	if l.paged.n == 0 {
		r.clearIfEmpty(p)
		return
	}
	var tokens [pageInBatch]uint64
	var deadlines [pageInBatch]int64
	n := r.popPaged(p, tokens[:], deadlines[:])
	q := r.q
	var now int64
	r.paging.Pager.PageIn(tokens[:n], func(i int, m *Message, redelivered bool) {
		deadline := deadlines[i]
		if deadline == unknownDeadline {
			if now == 0 {
				now = q.now()
			}
			deadline = q.deadline(m, now)
		}
		e := q.newEntry(m, deadline)
		e.redelivered.Store(redelivered)
		size := int64(m.Size())
		r.pagedBytes -= size
		r.bytes -= size
		l.fifo.pushBack(e)
		r.added(e)
	})
	if r.pagedCount == 0 {
		// Messages the Pager could not read leave no bytes behind.
		r.bytes -= r.pagedBytes
		r.pagedBytes = 0
	}
	r.clearIfEmpty(p)
}

// popPaged takes up to len(tokens) paged-out messages from the front of
// level p out of the counts (all but their bytes) and returns how many.
func (r *readyStore) popPaged(p int, tokens []uint64, deadlines []int64) int {
	n := r.levels[p].paged.pop(tokens, deadlines)
	r.pagedCount -= n
	r.count -= n
	for _, d := range deadlines[:n] {
		if d != noDeadline {
			r.expiring--
		}
	}
	return n
}

// drainPaged removes every paged-out message and returns their tokens.
func (r *readyStore) drainPaged() []uint64 {
	if r.pagedCount == 0 {
		return nil
	}
	out := make([]uint64, 0, r.pagedCount)
	var tokens [pageInBatch]uint64
	var deadlines [pageInBatch]int64
	for p := range r.levels {
		for r.levels[p].paged.n > 0 {
			n := r.popPaged(p, tokens[:], deadlines[:])
			out = append(out, tokens[:n]...)
		}
		r.clearIfEmpty(p)
	}
	r.bytes -= r.pagedBytes
	r.pagedBytes = 0
	return out
}
