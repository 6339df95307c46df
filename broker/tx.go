package broker

import (
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// txState buffers a transaction's publishes and settlements until commit.
type txState struct {
	publishes []txPublish
	acks      []unackedDelivery // taken from the unacked list; restored on rollback
	kinds     []Settlement      // per entry of acks
}

type txPublish struct {
	ex        *exchange.Exchange
	msg       *queue.Message
	mandatory bool
}

func (t *txState) publish(ex *exchange.Exchange, msg *queue.Message, mandatory bool) {
	t.publishes = append(t.publishes, txPublish{ex, msg, mandatory})
}

func (t *txState) settle(ds []unackedDelivery, how Settlement) {
	for _, d := range ds {
		t.acks = append(t.acks, d)
		t.kinds = append(t.kinds, how)
	}
}

func (ch *channel) onTxSelect() error {
	if ch.confirms != nil {
		return amqp.Errorf(amqp.PreconditionFailed, "cannot switch from confirm to tx mode")
	}
	if ch.tx == nil {
		ch.tx = &txState{}
		ch.mu.Lock()
		ch.txInfo = true
		ch.mu.Unlock()
	}
	ch.send(&amqp.TxSelectOk{})
	return nil
}

func (ch *channel) onTxCommit() error {
	t := ch.tx
	if t == nil {
		return amqp.Errorf(amqp.PreconditionFailed, "channel is not transactional")
	}
	ch.tx = &txState{}
	// commit-ok once every durable write of the transaction is on disk,
	// here and on the home nodes of the queues on other nodes.
	committed := &publishOutcome{notify: func(queue.PublishResult) { ch.sendIfOpen(&amqp.TxCommitOk{}) }}
	committed.pending.Store(2) // this node's sync, and the enqueueing below
	ch.txCommit = committed
	for _, p := range t.publishes {
		ch.enqueue(p.ex, p.msg, p.mandatory, 0)
	}
	ch.txCommit = nil
	for i, d := range t.acks {
		ch.apply([]unackedDelivery{d}, t.kinds[i])
		if d.consumer != nil {
			d.consumer.kick()
		}
	}
	committed.done()
	ch.c.srv.store.Sync(func(err error) {
		if err != nil {
			ch.c.log.Error("transaction commit failed", "err", err)
			ch.c.forceClose(amqp.Errorf(amqp.InternalError, "could not store the transaction's messages"))
			return
		}
		committed.done()
	})
	return nil
}

func (ch *channel) onTxRollback() error {
	t := ch.tx
	if t == nil {
		return amqp.Errorf(amqp.PreconditionFailed, "channel is not transactional")
	}
	ch.tx = &txState{}
	if len(t.acks) > 0 {
		ch.mu.Lock()
		for _, d := range t.acks {
			if d.consumer != nil {
				d.consumer.unacked++
			}
		}
		ch.unacked.restore(t.acks)
		ch.mu.Unlock()
	}
	ch.send(&amqp.TxRollbackOk{})
	return nil
}
