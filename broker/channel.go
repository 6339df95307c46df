package broker

import (
	"slices"
	"sync"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// channel is one AMQP channel's session state. Fields above mu are touched
// only by the connection's reader goroutine; those below by whoever holds mu
// (the reader, and queues delivering to this channel's consumers).
type channel struct {
	id      uint16
	c       *conn
	closing bool // we sent channel.close and wait for close-ok

	content    contentState
	router     exchange.Router
	routed     []QueueHandle // scratch for the queues a publish reaches
	lastQueue  string
	confirms   *confirmTracker // nil until confirm.select
	tx         *txState        // nil until tx.select
	txCommit   *publishOutcome // while tx.commit enqueues: waits for queues on other nodes
	prefetch   int             // per-consumer prefetch for new consumers (qos global=false)
	scratch    []unackedDelivery
	entries    []QueueEntry // scratch for settling
	sincePaced int          // publishes since the last flow-control check
	writeOK    struct {     // the last exchange publishing was allowed to
		gen      uint64
		exchange string
		valid    bool
	}

	mu             sync.Mutex
	closed         bool
	nextTag        uint64
	unacked        unackedList
	consumers      map[string]*consumer
	order          []*consumer // the consumers in the order they came: the turns of freed credit
	lastServed     *consumer   // the consumer of the latest delivery
	globalPrefetch int         // qos global=true; 0: unlimited
	globalBlocked  bool        // a consumer was refused for the channel-wide limit
	replyTo        *replyToConsumer
	prefetchInfo   int // copies of reader-owned settings, for management
	confirmInfo    bool
	txInfo         bool
	deliver        amqp.BasicDeliver
	getOk          amqp.BasicGetOk

	stats Counters // message counters, read by management
}

func newChannel(c *conn, id uint16) *channel {
	return &channel{id: id, c: c, consumers: map[string]*consumer{}}
}

// vhost returns the channel's vhost.
func (ch *channel) vhost() *Vhost { return ch.c.vhost }

// handle runs one method on an open channel.
func (ch *channel) handle(m amqp.Method) error {
	if ch.content.expecting() {
		return amqp.Errorf(amqp.UnexpectedFrame, "expected content header for class 60, got non content header frame instead")
	}
	switch m := m.(type) {
	case *amqp.BasicPublish:
		return ch.onPublish(m)
	case *amqp.BasicAck:
		return ch.settle(m.DeliveryTag, m.Multiple, SettleAck)
	case *amqp.BasicNack:
		if m.Requeue {
			return ch.settle(m.DeliveryTag, m.Multiple, SettleRequeue)
		}
		return ch.settle(m.DeliveryTag, m.Multiple, SettleReject)
	case *amqp.BasicReject:
		if m.Requeue {
			return ch.settle(m.DeliveryTag, false, SettleRequeue)
		}
		return ch.settle(m.DeliveryTag, false, SettleReject)
	case *amqp.ChannelOpen:
		return amqp.Errorf(amqp.ChannelError, "second 'channel.open' seen")
	case *amqp.ChannelClose:
		ch.shutdown()
		ch.c.freeChannel(ch)
		ch.c.out.method(ch.id, &amqp.ChannelCloseOk{})
		return nil
	case *amqp.ChannelCloseOk:
		return nil
	case *amqp.ChannelFlow:
		return ch.onFlow(m)
	case *amqp.ChannelFlowOk:
		return nil
	case *amqp.ExchangeDeclare:
		return ch.onExchangeDeclare(m)
	case *amqp.ExchangeDelete:
		return ch.onExchangeDelete(m)
	case *amqp.ExchangeBind:
		return ch.onExchangeBind(m)
	case *amqp.ExchangeUnbind:
		return ch.onExchangeUnbind(m)
	case *amqp.QueueDeclare:
		return ch.onQueueDeclare(m)
	case *amqp.QueueBind:
		return ch.onQueueBind(m)
	case *amqp.QueueUnbind:
		return ch.onQueueUnbind(m)
	case *amqp.QueuePurge:
		return ch.onQueuePurge(m)
	case *amqp.QueueDelete:
		return ch.onQueueDelete(m)
	case *amqp.BasicQos:
		return ch.onQos(m)
	case *amqp.BasicConsume:
		return ch.onConsume(m)
	case *amqp.BasicCancel:
		return ch.onCancel(m)
	case *amqp.BasicGet:
		return ch.onGet(m)
	case *amqp.BasicRecover:
		return ch.onRecover(m.Requeue, true)
	case *amqp.BasicRecoverAsync:
		return ch.onRecover(m.Requeue, false)
	case *amqp.ConfirmSelect:
		return ch.onConfirmSelect(m)
	case *amqp.TxSelect:
		return ch.onTxSelect()
	case *amqp.TxCommit:
		return ch.onTxCommit()
	case *amqp.TxRollback:
		return ch.onTxRollback()
	}
	return amqp.Errorf(amqp.CommandInvalid, "unexpected method '%s' from the client", m.Name())
}

// send queues a method on this channel; the reader goroutine calls it.
func (ch *channel) send(m amqp.Method) { ch.c.out.method(ch.id, m) }

// sendIfOpen queues a method unless the channel was shut down, for the
// goroutines other than the reader: once a channel's close (or close-ok)
// is queued, nothing else may follow on its number.
func (ch *channel) sendIfOpen(m amqp.Method) {
	ch.mu.Lock()
	if !ch.closed {
		ch.c.out.method(ch.id, m)
	}
	ch.mu.Unlock()
}

// onFlow answers channel.flow as RabbitMQ does: a client may not stop the
// server's deliveries this way (540), and active=true is a no-op.
func (ch *channel) onFlow(m *amqp.ChannelFlow) error {
	if !m.Active {
		return amqp.Errorf(amqp.NotImplemented, "active=false")
	}
	ch.send(&amqp.ChannelFlowOk{Active: true})
	return nil
}

// consumerList returns the channel's consumers in the order they came;
// the caller holds mu.
func (ch *channel) consumerList() []*consumer {
	return slices.Clone(ch.order)
}

// consumersInTurn returns the channel's consumers in turn, starting after
// the one that received the latest delivery: credit that an ack frees
// under the channel's limit is offered to them in this order, so that
// every queue the channel consumes from is served (RabbitMQ's limiter
// tells the queues in a shuffled order). The caller holds mu.
func (ch *channel) consumersInTurn() []*consumer {
	n := len(ch.order)
	start := 0
	if i := slices.Index(ch.order, ch.lastServed); i >= 0 {
		start = i + 1
	}
	out := make([]*consumer, 0, n)
	for k := 0; k < n; k++ {
		out = append(out, ch.order[(start+k)%n])
	}
	return out
}

// addConsumer registers c under its tag; the caller holds mu.
func (ch *channel) addConsumer(c *consumer) {
	ch.consumers[c.tag] = c
	ch.order = append(ch.order, c)
}

// removeConsumer unregisters the consumer with tag and returns it (nil if
// there was none); the caller holds mu.
func (ch *channel) removeConsumer(tag string) *consumer {
	c := ch.consumers[tag]
	if c == nil {
		return nil
	}
	delete(ch.consumers, tag)
	if i := slices.Index(ch.order, c); i >= 0 {
		ch.order = slices.Delete(ch.order, i, i+1)
	}
	if ch.lastServed == c {
		ch.lastServed = nil
	}
	return c
}

// shutdown releases the channel's consumers and requeues its unacked
// messages. It runs when the channel or its connection closes.
func (ch *channel) shutdown() {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	consumers := ch.consumerList()
	ch.consumers = map[string]*consumer{}
	ch.order, ch.lastServed = nil, nil
	pending := ch.unacked.drain(nil)
	ch.mu.Unlock()
	for _, c := range consumers {
		c.detach()
	}
	if ch.confirms != nil {
		ch.confirms.close()
	}
	if ch.tx != nil {
		pending = append(pending, ch.tx.acks...)
		ch.tx = nil
	}
	settleByQueue(pending, nil, SettleRequeue)
	ch.c.srv.replyTo.unregisterChannel(ch)
}

// settleByQueue groups deliveries by queue, in order, and settles each
// group with its queue. The common case of one queue allocates nothing
// beyond entries' growth; entries is scratch space the caller may reuse.
func settleByQueue(ds []unackedDelivery, entries []QueueEntry, how Settlement) []QueueEntry {
	if len(ds) == 0 {
		return entries
	}
	first := ds[0].queue
	single := true
	for _, d := range ds[1:] {
		if d.queue != first {
			single = false
			break
		}
	}
	if single {
		entries = entries[:0]
		for _, d := range ds {
			entries = append(entries, d.entry)
		}
		first.Settle(how, entries)
		clear(entries)
		return entries[:0]
	}
	done := make([]bool, len(ds))
	for i := range ds {
		if done[i] {
			continue
		}
		q := ds[i].queue
		entries = entries[:0]
		for j := i; j < len(ds); j++ {
			if !done[j] && ds[j].queue == q {
				entries = append(entries, ds[j].entry)
				done[j] = true
			}
		}
		q.Settle(how, entries)
	}
	clear(entries)
	return entries[:0]
}
