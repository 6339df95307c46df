package queue

// Paging keeps a queue's memory bounded however long it grows. Past a
// bound, ready messages are not kept as entries: the queue hands them to a
// Pager (which writes them to disk unless they are stored already) and
// keeps only a token per message, plus its deadline when it has one, in
// blocks of refBlockSize. Each priority level pages on its own: once a
// level has paged-out messages, later publishes to it are paged out too,
// so the entries in memory always come before the paged ones and order is
// kept.
//
// Reading back happens without the queue's lock, so that a slow disk never
// stalls the queue's publishers and consumers. Under the lock the queue
// takes the next pageInBatch tokens off the front of a level into a
// pageRead, which becomes the level's read in progress, and starts a
// goroutine (pageIn) that calls the Pager without the lock, then retakes
// the lock to append the messages read to the level's memory and deliver.
// A level starts its read when a consumer, Get, expiry or drop-head takes
// it down to readAhead entries in memory, or when it has none left.
// Meanwhile:
//   - the messages being read still count as paged out (ready count,
//     bytes, expiring), so max-length, Counts and the "queue is empty"
//     fast path of Publish see them;
//   - the level delivers what it still has in memory; once that is gone,
//     delivery stops at the level (lower priorities wait, as they would
//     behind messages in memory) and Get waits for the read;
//   - publishes to the level page out behind the read, which keeps order;
//   - purge and delete take the messages out of the counts at once, hand
//     their tokens to Pager.Discard with the other paged-out ones, and mark
//     the read cancelled: what it returns is dropped.
// One read per level is in progress at a time.

// Pager moves ready messages out of memory and back for one queue.
// PageOut and Discard are called with the queue's lock held; PageIn is
// called without it, from a goroutine of its own, possibly while PageOut,
// Discard or the PageIn of another priority level of the queue runs. No
// method may call into the queue.
type Pager interface {
	// PageOut makes m readable by PageIn and returns the token to read it
	// with, or false when it cannot or would rather not (the message then
	// stays in memory). With force, the queue needs m out of memory to
	// keep its order: only a failure keeps it in.
	PageOut(m *Message, force bool) (token uint64, ok bool)
	// PageIn reads the messages of tokens and calls fn, in order, for
	// each one it finds (i indexes tokens), with whether it was delivered
	// before (a restart remembers it). A message it cannot read is left
	// out (and logged by the Pager). It must not modify tokens. The
	// tokens of a read that purge or delete cancelled may be discarded
	// while it runs: the queue drops whatever it returns for them.
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

// readAhead is how few entries a level being consumed keeps in memory
// before it starts reading its next batch back, so that its consumers
// rarely find it empty while the read runs.
const readAhead = pageInBatch / 2

// unknownDeadline marks a restored message whose deadline is computed when
// it is read back (its expiration property is not known before).
const unknownDeadline = -1

// refBlock is a run of paged-out messages: their tokens and, once one of
// them has a deadline, the deadlines of all; once one of them was
// delivered before (a requeued message paged out by PageOutExcess), a
// bitmap of those.
type refBlock struct {
	tokens      [refBlockSize]uint64
	deadlines   *[refBlockSize]int64
	redelivered *[refBlockSize / 64]uint64
}

// set records slot i's deadline and redelivered flag.
func (b *refBlock) set(i int, deadline int64, redelivered bool) {
	if deadline != noDeadline && b.deadlines == nil {
		b.deadlines = new([refBlockSize]int64)
		for j := range b.deadlines {
			b.deadlines[j] = noDeadline
		}
	}
	if b.deadlines != nil {
		b.deadlines[i] = deadline
	}
	if redelivered && b.redelivered == nil {
		b.redelivered = new([refBlockSize / 64]uint64)
	}
	if b.redelivered != nil {
		if redelivered {
			b.redelivered[i/64] |= 1 << (i % 64)
		} else {
			b.redelivered[i/64] &^= 1 << (i % 64)
		}
	}
}

// get returns slot i's deadline and redelivered flag.
func (b *refBlock) get(i int) (deadline int64, redelivered bool) {
	deadline = noDeadline
	if b.deadlines != nil {
		deadline = b.deadlines[i]
	}
	if b.redelivered != nil {
		redelivered = b.redelivered[i/64]&(1<<(i%64)) != 0
	}
	return deadline, redelivered
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
	b.set(i, deadline, false)
	r.n++
}

// pushFront adds a message in front of the others.
func (r *refQueue) pushFront(token uint64, deadline int64, redelivered bool) {
	if r.n == 0 {
		r.blocks, r.head = nil, 0
		r.push(token, deadline)
		r.blocks[0].set(0, deadline, redelivered)
		return
	}
	if r.head == 0 {
		r.blocks = append(r.blocks, nil)
		copy(r.blocks[1:], r.blocks)
		r.blocks[0] = new(refBlock)
		r.head = refBlockSize
	}
	r.head--
	b := r.blocks[0]
	b.tokens[r.head] = token
	b.set(r.head, deadline, redelivered)
	r.n++
}

// pop removes up to len(tokens) messages from the front into tokens,
// deadlines and (unless nil) redelivered, and returns how many.
func (r *refQueue) pop(tokens []uint64, deadlines []int64, redelivered []bool) int {
	k := 0
	for k < len(tokens) && r.n > 0 {
		b := r.blocks[0]
		tokens[k] = b.tokens[r.head]
		d, rd := b.get(r.head)
		deadlines[k] = d
		if redelivered != nil {
			redelivered[k] = rd
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
// memory is at its bound (unacked deliveries count against it: their
// messages are in memory too).
func (r *readyStore) pageOut(e *Entry) bool {
	pg := &r.paging
	if pg.Pager == nil {
		return false
	}
	l := &r.levels[e.priority]
	behind := l.paged.n > 0 || l.reading != nil // e must follow paged-out messages
	if !behind &&
		(pg.MaxMessages <= 0 || r.count-r.pagedCount+r.q.unacked.len < pg.MaxMessages) &&
		(pg.MaxBytes <= 0 || r.bytes-r.pagedBytes < pg.MaxBytes) {
		return false
	}
	token, ok := pg.Pager.PageOut(e.msg, behind)
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

// pageRead is a read of paged-out messages in progress for one level: the
// tokens taken off the front of the level under the queue's lock, and the
// messages the Pager returned for them, filled without it.
type pageRead struct {
	pager     Pager
	level     int
	n         int
	tokens    [pageInBatch]uint64
	deadlines [pageInBatch]int64
	msgs      [pageInBatch]*Message // nil: not read (lost)
	delivered [pageInBatch]bool
	requeued  [pageInBatch]bool // delivered before it was paged out (PageOutExcess)
	// cancelled is set, under the queue's lock, when purge or delete took
	// the messages out of the queue while they were read.
	cancelled bool
	done      chan struct{} // closed once the messages are installed or dropped
}

// startRead starts reading level p's next paged-out messages back, unless
// a read of the level is in progress or it has nothing paged out. The
// messages stay counted as paged out until pageIn installs them.
func (r *readyStore) startRead(p int) {
	l := &r.levels[p]
	if l.reading != nil || l.paged.n == 0 {
		return
	}
	rd := &pageRead{pager: r.paging.Pager, level: p, done: make(chan struct{})}
	rd.n = l.paged.pop(rd.tokens[:], rd.deadlines[:], rd.requeued[:])
	l.reading = rd
	go r.q.pageIn(rd)
}

// pageIn reads rd's messages back without the queue's lock, then installs
// them and delivers (or drops them if purge or delete cancelled the read).
func (q *Queue) pageIn(rd *pageRead) {
	rd.pager.PageIn(rd.tokens[:rd.n], func(i int, m *Message, redelivered bool) {
		rd.msgs[i], rd.delivered[i] = m, redelivered
	})
	var fx effects
	q.mu.Lock()
	if !rd.cancelled {
		q.ready.install(rd)
		if !q.deleted {
			now := q.now()
			if q.hasLengthLimit && q.cfg.Overflow == DropHead {
				q.dropHeadOverflow(&fx)
			}
			q.expireHeads(now, &fx)
			q.dispatch(&fx)
			q.armTTL(now)
		}
	}
	close(rd.done)
	q.mu.Unlock()
	fx.run(q)
}

// install ends rd, which must be its level's read in progress: the
// messages read go to the back of the level's memory, with their deadline
// (computed now for restored ones), and leave the paged-out counts with
// the ones that could not be read.
func (r *readyStore) install(rd *pageRead) {
	l := &r.levels[rd.level]
	l.reading = nil
	r.dropRead(rd)
	q := r.q
	var now int64
	for i, m := range rd.msgs[:rd.n] {
		if m == nil {
			continue
		}
		deadline := rd.deadlines[i]
		if deadline == unknownDeadline {
			if now == 0 {
				now = q.now()
			}
			deadline = q.deadline(m, now)
		}
		e := q.newEntry(m, deadline)
		e.redelivered.Store(rd.delivered[i] || rd.requeued[i])
		size := int64(m.Size())
		r.pagedBytes -= size
		r.bytes -= size
		l.fifo.pushBack(e)
		r.added(e)
	}
	if r.pagedCount == 0 {
		// Messages the Pager could not read leave no bytes behind.
		r.bytes -= r.pagedBytes
		r.pagedBytes = 0
	}
	r.clearIfEmpty(rd.level)
}

// dropRead takes rd's messages out of the counts (all but their bytes),
// as popPaged does for messages still in a refQueue.
func (r *readyStore) dropRead(rd *pageRead) {
	r.pagedCount -= rd.n
	r.count -= rd.n
	for _, d := range rd.deadlines[:rd.n] {
		if d != noDeadline {
			r.expiring--
		}
	}
}

// popPaged takes up to len(tokens) paged-out messages from the front of
// level p out of the counts (all but their bytes) and returns how many.
func (r *readyStore) popPaged(p int, tokens []uint64, deadlines []int64) int {
	n := r.levels[p].paged.pop(tokens, deadlines, nil)
	r.pagedCount -= n
	r.count -= n
	for _, d := range deadlines[:n] {
		if d != noDeadline {
			r.expiring--
		}
	}
	return n
}

// drainPaged removes every paged-out message, those being read back
// included (their reads are cancelled), and returns their tokens.
func (r *readyStore) drainPaged() []uint64 {
	if r.pagedCount == 0 {
		return nil
	}
	out := make([]uint64, 0, r.pagedCount)
	var tokens [pageInBatch]uint64
	var deadlines [pageInBatch]int64
	for p := range r.levels {
		if rd := r.levels[p].reading; rd != nil {
			rd.cancelled = true
			r.levels[p].reading = nil
			r.dropRead(rd)
			out = append(out, rd.tokens[:rd.n]...) // a copy: the read still uses rd.tokens
		}
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
