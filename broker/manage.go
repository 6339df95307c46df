package broker

import (
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Operations the management API performs outside any AMQP connection.

// Publish routes a message from the named exchange as basic.publish would
// (alternate exchanges, CC/BCC, persistence) and reports whether it reached
// a queue. It waits until a persistent message is on disk (for a queue on
// another node: until that node has it).
func (v *Vhost) Publish(exchangeName, routingKey string, props amqp.Properties, body []byte) (routed bool, err error) {
	ex := v.findExchange(exchangeName)
	if ex == nil {
		return false, v.notFoundExchange(exchangeName)
	}
	if ex.Internal {
		return false, amqp.Errorf(amqp.AccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", exchangeName, v.name)
	}
	if props.Expiration != "" {
		if _, err := queue.ParseExpiration(props.Expiration); err != nil {
			return false, err
		}
	}
	if err := checkRoutingHeaders(props.Headers); err != nil {
		return false, err
	}
	srv := v.srv
	msg := &queue.Message{ID: srv.newMessageID(), Exchange: exchangeName, RoutingKey: routingKey, Properties: props, Body: body}
	ex.PublishIn.Add(1)
	var r exchange.Router
	queues := v.route(&r, ex, msg, nil)
	if len(queues) == 0 {
		return false, nil
	}
	msg = stripBCC(msg)
	done := make(chan error, 1)
	outcome := &publishOutcome{stored: done}
	outcome.pending.Store(1)
	srv.persistMessage(msg, queues, outcome)
	publishToQueues(ex, msg, queues, outcome)
	outcome.done()
	return true, <-done
}

// GotMessage is a message taken by GetMessages.
type GotMessage struct {
	Message      *queue.Message
	Redelivered  bool
	MessageCount int // ready messages left after this one
}

// GetMessages takes up to count ready messages from q, as the management
// API's "get messages" does: with requeue they go back to their places
// (flagged redelivered), otherwise they are acknowledged and leave the
// queue.
func GetMessages(q QueueHandle, count int, requeue bool) []GotMessage {
	var out []GotMessage
	var entries []QueueEntry
	for range count {
		e, remaining, ok := q.Get(false)
		if !ok {
			break
		}
		out = append(out, GotMessage{Message: e.Message(), Redelivered: e.Redelivered(), MessageCount: remaining})
		entries = append(entries, e)
	}
	how := SettleAck
	if requeue {
		how = SettleRequeue
	}
	q.Settle(how, entries)
	return out
}
