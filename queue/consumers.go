package queue

import (
	"reflect"
	"slices"
)

// Consumer receives deliveries from a queue. The value must be comparable
// (typically a pointer): the queue keys its consumers by it.
type Consumer interface {
	// Deliver offers the entry to the consumer. It is called with the
	// queue's lock held: it must not block and must not call back into the
	// queue. It returns false when the consumer has no credit now; the queue
	// then offers the entry to the next consumer and offers this one nothing
	// more until Kick is called for it. redelivered is the entry's
	// redelivered flag.
	Deliver(e *Entry, redelivered bool) bool
}

// ConsumerOptions are the basic.consume settings the queue acts upon.
type ConsumerOptions struct {
	NoAck     bool // deliveries are settled as soon as Deliver accepts them
	Exclusive bool // no other consumer may use the queue meanwhile
	Priority  int  // x-priority: higher priorities are served first
	// Prefetch is the consumer's own limit of unacked deliveries (0:
	// none). A queue does not enforce it (the consumer refuses past it);
	// a queue on another node of a cluster sizes its credit with it.
	Prefetch int
}

// consumerState is one registered consumer.
type consumerState struct {
	c       Consumer
	opts    ConsumerOptions
	blocked bool // refused a delivery; waits for Kick
	active  bool // may receive (false for a waiting single-active-consumer)
	group   *priorityGroup

	// Ring of the group's consumers that may receive (active, not
	// blocked), in round-robin order; linked tells whether it is in it.
	prev, next *consumerState
	linked     bool
}

// priorityGroup is the consumers of one priority: a ring of those that may
// receive, with the cursor on the next one to serve.
type priorityGroup struct {
	priority int
	members  int            // consumers in the group, linked or not
	cursor   *consumerState // next to serve; nil when no consumer is linked
}

// consumerSet is a queue's consumers. Picking the next consumer is O(number
// of priority groups), which is one in the common case; blocked consumers
// are out of the rings, so dispatch never walks over them.
type consumerSet struct {
	byConsumer map[Consumer]*consumerState
	order      []*consumerState // registration order (single active consumer takes the first)
	groups     []*priorityGroup // by priority, highest first
	linked     int              // consumers that may receive now
	exclusive  bool
	single     bool // single active consumer
}

func newConsumerSet(single bool) consumerSet {
	return consumerSet{byConsumer: make(map[Consumer]*consumerState), single: single}
}

func (s *consumerSet) len() int { return len(s.order) }

// lookup returns c's state, or nil for an unknown or unusable value.
func (s *consumerSet) lookup(c Consumer) (cs *consumerState) {
	defer func() {
		if recover() != nil { // c is not comparable: it cannot be registered
			cs = nil
		}
	}()
	return s.byConsumer[c]
}

// add registers c. With single active consumer the first registered is the
// active one and the others wait.
func (s *consumerSet) add(c Consumer, opts ConsumerOptions) (*consumerState, error) {
	if c == nil || !reflect.ValueOf(c).Comparable() {
		return nil, ErrInvalidConsumer
	}
	if s.byConsumer[c] != nil {
		return nil, ErrConsumerExists
	}
	if s.exclusive || (opts.Exclusive && (len(s.order) > 0 || s.single)) {
		return nil, ErrExclusiveConsumer
	}
	cs := &consumerState{c: c, opts: opts}
	s.byConsumer[c] = cs
	s.order = append(s.order, cs)
	s.exclusive = opts.Exclusive
	if !s.single || len(s.order) == 1 {
		s.activate(cs)
	}
	return cs, nil
}

// remove unregisters cs. With single active consumer, when the active one
// goes, the next in registration order becomes active and is returned.
func (s *consumerSet) remove(cs *consumerState) (promoted *consumerState) {
	delete(s.byConsumer, cs.c)
	if i := slices.Index(s.order, cs); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
	if cs.opts.Exclusive {
		s.exclusive = false
	}
	wasActive := cs.active
	if cs.active {
		s.deactivate(cs)
	}
	if s.single && wasActive && len(s.order) > 0 {
		promoted = s.order[0]
		s.activate(promoted)
	}
	return promoted
}

// activate puts cs in its priority group, ready to receive.
func (s *consumerSet) activate(cs *consumerState) {
	g := s.group(cs.opts.Priority)
	g.members++
	cs.group, cs.active, cs.blocked = g, true, false
	s.link(cs)
}

func (s *consumerSet) deactivate(cs *consumerState) {
	if cs.linked {
		s.unlink(cs)
	}
	g := cs.group
	g.members--
	if g.members == 0 {
		if i := slices.Index(s.groups, g); i >= 0 {
			s.groups = slices.Delete(s.groups, i, i+1)
		}
	}
	cs.group, cs.active = nil, false
}

// group returns the group of priority p, creating it in order.
func (s *consumerSet) group(p int) *priorityGroup {
	i := 0
	for ; i < len(s.groups); i++ {
		if s.groups[i].priority == p {
			return s.groups[i]
		}
		if s.groups[i].priority < p {
			break
		}
	}
	g := &priorityGroup{priority: p}
	s.groups = slices.Insert(s.groups, i, g)
	return g
}

// next returns the consumer to offer the next entry to: the cursor of the
// highest-priority group with a consumer that may receive; nil if none.
func (s *consumerSet) next() *consumerState {
	if s.linked == 0 {
		return nil
	}
	for _, g := range s.groups {
		if g.cursor != nil {
			return g.cursor
		}
	}
	return nil
}

// served moves the group's cursor past cs (round-robin).
func (s *consumerSet) served(cs *consumerState) {
	cs.group.cursor = cs.next
}

// block takes cs out of its ring until unblock.
func (s *consumerSet) block(cs *consumerState) {
	cs.blocked = true
	if cs.linked {
		s.unlink(cs)
	}
}

// unblock puts a blocked, active cs back at the end of its ring.
func (s *consumerSet) unblock(cs *consumerState) {
	if !cs.blocked || !cs.active {
		return
	}
	cs.blocked = false
	s.link(cs)
}

// link inserts cs just before the cursor: last in round-robin order.
func (s *consumerSet) link(cs *consumerState) {
	g := cs.group
	if g.cursor == nil {
		cs.prev, cs.next = cs, cs
		g.cursor = cs
	} else {
		c := g.cursor
		cs.prev, cs.next = c.prev, c
		c.prev.next = cs
		c.prev = cs
	}
	cs.linked = true
	s.linked++
}

func (s *consumerSet) unlink(cs *consumerState) {
	g := cs.group
	if cs.next == cs {
		g.cursor = nil
	} else {
		cs.prev.next = cs.next
		cs.next.prev = cs.prev
		if g.cursor == cs {
			g.cursor = cs.next
		}
	}
	cs.prev, cs.next, cs.linked = nil, nil, false
	s.linked--
}

// clear returns the consumers in registration order and empties the set.
func (s *consumerSet) clear() []Consumer {
	out := make([]Consumer, len(s.order))
	for i, cs := range s.order {
		out[i] = cs.c
	}
	*s = consumerSet{byConsumer: make(map[Consumer]*consumerState), single: s.single}
	return out
}
