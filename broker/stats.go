package broker

import "sync/atomic"

// Stat names one message counter of the management API's message_stats.
type Stat int

// The counters, in the management API's names.
const (
	StatPublish          Stat = iota // messages published (channel, vhost) or enqueued (queue)
	StatPublishIn                    // messages published to an exchange
	StatPublishOut                   // copies routed out of an exchange into queues
	StatConfirm                      // publisher confirms (basic.ack) sent
	StatDeliver                      // deliveries to consumers that must ack
	StatDeliverNoAck                 // deliveries to no-ack consumers
	StatGet                          // basic.get answered, ack required
	StatGetNoAck                     // basic.get answered, no-ack
	StatRedeliver                    // deliveries and gets flagged redelivered
	StatAck                          // messages acknowledged
	StatReturnUnroutable             // unroutable mandatory messages returned
	StatDropUnroutable               // unroutable messages dropped
	NumStats
)

// StatNames are the management API's field names, indexed by Stat.
var StatNames = [NumStats]string{
	"publish", "publish_in", "publish_out", "confirm", "deliver", "deliver_no_ack",
	"get", "get_no_ack", "redeliver", "ack", "return_unroutable", "drop_unroutable",
}

// MessageStats is a snapshot of counters, indexed by Stat.
type MessageStats [NumStats]uint64

// Add adds o to s.
func (s *MessageStats) Add(o *MessageStats) {
	for i := range s {
		s[i] += o[i]
	}
}

// Counters are message counters updated without locks: each owner
// (channel, queue, exchange) has its own, and totals are summed on read.
type Counters struct {
	n [NumStats]atomic.Uint64
}

// Inc adds one to counter k.
func (c *Counters) Inc(k Stat) { c.n[k].Add(1) }

// Add adds d to counter k.
func (c *Counters) Add(k Stat, d uint64) { c.n[k].Add(d) }

// Snapshot reads every counter.
func (c *Counters) Snapshot() MessageStats {
	var s MessageStats
	for i := range s {
		s[i] = c.n[i].Load()
	}
	return s
}

// addAll adds a snapshot's counts, retiring a closed channel's or
// connection's counters into its parent.
func (c *Counters) addAll(s *MessageStats) {
	for i, v := range s {
		if v != 0 {
			c.n[i].Add(v)
		}
	}
}

// deliveryStat is the counter of a delivery (get: by basic.get).
func deliveryStat(get, noAck bool) Stat {
	switch {
	case get && noAck:
		return StatGetNoAck
	case get:
		return StatGet
	case noAck:
		return StatDeliverNoAck
	}
	return StatDeliver
}

// countDelivery counts one delivery or get on the channel; the queue
// counts its own.
func (ch *channel) countDelivery(get, noAck, redelivered bool) {
	ch.stats.Inc(deliveryStat(get, noAck))
	if redelivered {
		ch.stats.Inc(StatRedeliver)
	}
}

// retireChannelLocked moves a closing channel's counters into the
// connection's; the caller holds c.chMu and removes the channel.
func (c *conn) retireChannelLocked(ch *channel) {
	s := ch.stats.Snapshot()
	c.retired.addAll(&s)
}

// messageStats sums the connection's counters: its closed channels and its open
// ones.
func (c *conn) messageStats() MessageStats {
	s := c.retired.Snapshot()
	for _, ch := range c.channelList() {
		cs := ch.stats.Snapshot()
		s.Add(&cs)
	}
	return s
}

// MessageStats sums the vhost's counters: closed connections and open ones.
func (v *Vhost) MessageStats() MessageStats {
	s := v.retired.Snapshot()
	for _, c := range v.srv.connections() {
		if c.opened.Load() && c.vhost == v && !c.statsRetired.Load() {
			cs := c.messageStats()
			s.Add(&cs)
		}
	}
	return s
}
