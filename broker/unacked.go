package broker

import "sort"

// unackedDelivery is a delivery awaiting ack: its tag, the queue that
// delivered it and that queue's entry for it, which settle it, and the
// consumer it went to (nil for basic.get).
type unackedDelivery struct {
	tag      uint64
	queue    QueueHandle
	entry    QueueEntry
	consumer *consumer
}

// unackedList holds a channel's unacked deliveries in tag order. Tags only
// grow, so appends keep it sorted; acks of the oldest (the common case) pop
// the front, others leave a tombstone (entry == nil) compacted later.
type unackedList struct {
	items []unackedDelivery
	head  int
	live  int
}

func (l *unackedList) push(d unackedDelivery) {
	l.items = append(l.items, d)
	l.live++
}

func (l *unackedList) len() int { return l.live }

// take removes the delivery with tag (or, with multiple, every delivery up
// to and including tag; tag 0 with multiple means all) and appends them to
// out. It reports false if tag is not an unacked delivery.
func (l *unackedList) take(tag uint64, multiple bool, out []unackedDelivery) ([]unackedDelivery, bool) {
	if multiple && tag == 0 {
		return l.drain(out), true
	}
	i := l.search(tag)
	if i >= len(l.items) || l.items[i].tag != tag || l.items[i].entry == nil {
		return out, false // as RabbitMQ: the tag itself must be unacked, also with multiple
	}
	from := i
	if multiple {
		from = l.head
	}
	for j := from; j <= i; j++ {
		if l.items[j].entry != nil {
			out = append(out, l.items[j])
			l.items[j] = unackedDelivery{tag: l.items[j].tag} // a tombstone keeps its tag: the list stays sorted
			l.live--
		}
	}
	l.compact()
	return out, true
}

// search returns the index of the first item with a tag >= tag.
func (l *unackedList) search(tag uint64) int {
	return l.head + sort.Search(len(l.items)-l.head, func(k int) bool { return l.items[l.head+k].tag >= tag })
}

// drain removes and appends every delivery to out.
func (l *unackedList) drain(out []unackedDelivery) []unackedDelivery {
	for _, d := range l.items[l.head:] {
		if d.entry != nil {
			out = append(out, d)
		}
	}
	l.items, l.head, l.live = l.items[:0], 0, 0
	return out
}

// restore puts deliveries back (a rolled-back transaction's acks), keeping tag order.
func (l *unackedList) restore(ds []unackedDelivery) {
	all := l.drain(nil)
	all = append(all, ds...)
	sort.Slice(all, func(i, j int) bool { return all[i].tag < all[j].tag })
	for _, d := range all {
		l.push(d)
	}
}

// compact skips leading tombstones and reclaims space when the list is sparse.
func (l *unackedList) compact() {
	for l.head < len(l.items) && l.items[l.head].entry == nil {
		l.head++
	}
	if l.head == len(l.items) {
		l.items, l.head = l.items[:0], 0
		return
	}
	if l.head > 1024 && l.head > len(l.items)/2 || len(l.items)-l.head > 2*l.live+1024 {
		n := 0
		for _, d := range l.items[l.head:] {
			if d.entry != nil {
				l.items[n] = d
				n++
			}
		}
		clear(l.items[n:])
		l.items, l.head = l.items[:n], 0
	}
}
