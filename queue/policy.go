package queue

import "time"

// SetEffective applies a changed configuration to a live queue, as when a
// policy that sets its TTL, expiry, length limits or dead-lettering is set,
// changed or cleared. Only those settings change; the name, durability,
// priorities, single-active-consumer and declared arguments stay. A new
// message TTL applies to messages published from now on (as RabbitMQ's
// classic queues); a lowered length limit drops (or dead-letters) the
// excess head at once; a new x-expires restarts the countdown.
func (q *Queue) SetEffective(c Config) {
	var fx effects
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return
	}
	q.cfg.MessageTTL = c.MessageTTL
	q.cfg.Expires = c.Expires
	q.cfg.MaxLength, q.cfg.MaxLengthBytes, q.cfg.Overflow = c.MaxLength, c.MaxLengthBytes, c.Overflow
	q.cfg.DeadLetterExchange, q.cfg.HasDeadLetterExchange = c.DeadLetterExchange, c.HasDeadLetterExchange
	q.cfg.DeadLetterRoutingKey, q.cfg.HasDeadLetterRoutingKey = c.DeadLetterRoutingKey, c.HasDeadLetterRoutingKey
	q.messageTTL = -1
	if c.MessageTTL >= 0 {
		q.messageTTL = int64(c.MessageTTL)
	}
	q.hasLengthLimit = q.cfg.hasLengthLimit()
	q.setExpiresLocked(c.Expires)
	if q.hasLengthLimit && q.cfg.Overflow == DropHead {
		q.dropHeadOverflow(&fx)
	}
	q.mu.Unlock()
	fx.run(q)
}

// setExpiresLocked changes x-expires and restarts the countdown.
func (q *Queue) setExpiresLocked(d time.Duration) {
	ns := int64(0)
	if d > 0 {
		ns = int64(d)
	}
	if ns == q.expiresNanos {
		return
	}
	q.expiresNanos = ns
	if q.expiryTimer != nil {
		q.expiryTimer.Stop()
	}
	q.expiryArmed = false
	if ns == 0 || q.expiredFired {
		return
	}
	q.lastUsed = q.now()
	if q.expiryTimer == nil {
		q.expiryTimer = time.AfterFunc(d, q.onExpiryTimer)
	} else {
		q.expiryTimer.Reset(d)
	}
	q.expiryArmed = q.consumers.len() == 0
	if !q.expiryArmed {
		q.expiryTimer.Stop()
	}
}
