package broker

import (
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
	globalPrefetch int  // qos global=true; 0: unlimited
	globalBlocked  bool // a consumer was refused for the channel-wide limit
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

// send queues a method on this channel.
func (ch *channel) send(m amqp.Method) { ch.c.out.method(ch.id, m) }

// onFlow answers channel.flow as RabbitMQ does: a client may not stop the
// server's deliveries this way (540), and active=true is a no-op.
func (ch *channel) onFlow(m *amqp.ChannelFlow) error {
	if !m.Active {
		return amqp.Errorf(amqp.NotImplemented, "active=false")
	}
	ch.send(&amqp.ChannelFlowOk{Active: true})
	return nil
}

// consumerList returns the channel's consumers; the caller holds mu.
func (ch *channel) consumerList() []*consumer {
	out := make([]*consumer, 0, len(ch.consumers))
	for _, c := range ch.consumers {
		out = append(out, c)
	}
	return out
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
	pending := ch.unacked.drain(nil)
	ch.mu.Unlock()
	for _, c := range consumers {
		c.detach()
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
