package queue

// Paging out what is already in memory. Publishes page out at the queue's
// bound as they arrive (paging.go), but messages that were let in while
// the broker had memory to spare (transient ones page only under memory
// pressure), and requeued messages, stay in memory until they are
// delivered; with no consumer that is for ever, and a broker past its
// memory watermark, its publishers blocked, never gets below it.
// PageOutExcess moves them out: the broker calls it in the background
// while memory is short.
//
// The messages of a level in memory come before its paged-out ones, so
// they leave from the back: the newest first, each put in front of the
// level's paged-out messages, which keeps the order. A requeued message
// keeps its redelivered flag (refBlock). A level whose paged-out messages
// are being read back is left alone this time: the read's messages come
// between its memory and its paged-out ones.

// PageOutExcess pages out ready messages in memory beyond keep, counting
// unacked deliveries against it (and beyond the queue's bytes bound),
// lowest priority level first, newest first within a level, and returns
// how many it paged out. It stops at a message the Pager would rather
// keep (a transient one without memory pressure), since those after it
// must stay behind it. It does nothing without paging enabled.
func (q *Queue) PageOutExcess(keep int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := &q.ready
	if q.deleted || r.paging.Pager == nil {
		return 0
	}
	target := max(keep-q.unacked.len, 0)
	paged := 0
	for p := range r.levels {
		over := r.count - r.pagedCount - target
		overBytes := int64(0)
		if r.paging.MaxBytes > 0 {
			overBytes = r.bytes - r.pagedBytes - r.paging.MaxBytes
		}
		if over <= 0 && overBytes <= 0 {
			break
		}
		paged += r.pageOutLevel(p, over, overBytes)
	}
	return paged
}

// pageOutLevel pages out up to n of level p's messages in memory (or more,
// until overBytes bytes went), newest first, and returns how many.
func (r *readyStore) pageOutLevel(p, n int, overBytes int64) int {
	l := &r.levels[p]
	inMemory := l.fifo.n + len(l.requeued)
	if l.reading != nil || inMemory == 0 {
		return 0
	}
	// The level's memory in order (fifo and requeued merged by seq).
	entries := make([]*Entry, 0, inMemory)
	for e := l.pop(); e != nil; e = l.pop() {
		entries = append(entries, e)
	}
	i, paged := len(entries)-1, 0
	for ; i >= 0 && (paged < n || overBytes > 0); i-- {
		e := entries[i]
		token, ok := r.paging.Pager.PageOut(e.msg, false)
		if !ok {
			break
		}
		l.paged.pushFront(token, e.expiresAt, e.redelivered.Load())
		size := int64(e.msg.Size())
		r.pagedCount++
		r.pagedBytes += size
		overBytes -= size
		e.state = entryDone
		paged++
	}
	for _, e := range entries[:i+1] { // in seq order, as the fifo keeps them
		l.fifo.pushBack(e)
	}
	return paged
}
