package queue

import "time"

// Message TTL: one timer per queue, set for the earliest deadline among the
// heads of the ready store. It is only moved earlier from the hot path; when
// it fires it expires what is due and sets itself for the next deadline.

// armTTL makes sure the TTL timer fires by the next head deadline.
func (q *Queue) armTTL(now int64) {
	next := q.ready.nextDeadline()
	if next == noDeadline || next >= q.ttlArmedFor || q.deleted {
		return
	}
	q.ttlArmedFor = next
	d := time.Duration(max(next-now, 0))
	if q.ttlTimer == nil {
		q.ttlTimer = time.AfterFunc(d, q.onTTLTimer)
		return
	}
	q.ttlTimer.Reset(d)
}

func (q *Queue) onTTLTimer() {
	var fx effects
	q.mu.Lock()
	if !q.deleted {
		now := q.now()
		q.ttlArmedFor = noDeadline
		q.expireHeads(now, &fx)
		q.armTTL(now)
	}
	q.mu.Unlock()
	fx.run(q)
}

// x-expires: the queue is unused while it has no consumer; Get, Touch and
// the last consumer leaving restart the countdown (lastUsed). The timer is
// not reset on each use: when it fires early it sets itself for the rest.

// touchLocked marks the queue as used now.
func (q *Queue) touchLocked() {
	if q.expiresNanos == 0 || q.deleted || q.expiredFired {
		return
	}
	q.lastUsed = q.now()
	if !q.expiryArmed && q.consumers.len() == 0 {
		q.expiryArmed = true
		q.expiryTimer.Reset(time.Duration(q.expiresNanos))
	}
}

func (q *Queue) onExpiryTimer() {
	var fx effects
	q.mu.Lock()
	q.expiryArmed = false
	switch {
	case q.deleted || q.expiredFired || q.consumers.len() > 0:
		// Consumers keep the queue in use; the last one leaving re-arms.
	default:
		if idle := q.now() - q.lastUsed; idle < q.expiresNanos {
			q.expiryArmed = true
			q.expiryTimer.Reset(time.Duration(q.expiresNanos - idle))
		} else {
			q.expiredFired = true
			fx.expired = true
		}
	}
	q.mu.Unlock()
	fx.run(q)
}
