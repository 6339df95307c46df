package broker

import (
	"strings"
	"sync"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/queue"
)

// Direct reply-to: a client consumes (no-ack) from the pseudo-queue
// amq.rabbitmq.reply-to and publishes requests with that reply-to; the
// broker rewrites it to amq.rabbitmq.reply-to.<token>, and a reply
// published to the default exchange with that routing key goes straight to
// the consumer, without a queue.

const (
	replyToQueue  = "amq.rabbitmq.reply-to"
	replyToPrefix = replyToQueue + "."
)

// replyToRegistry maps tokens to the channels consuming replies.
type replyToRegistry struct {
	mu       sync.Mutex
	channels map[string]*channel
}

// replyToConsumer is a channel's direct reply-to subscription.
type replyToConsumer struct {
	tag   string
	token string
}

func (r *replyToRegistry) init() { r.channels = map[string]*channel{} }

func isReplyToAddress(key string) bool { return strings.HasPrefix(key, replyToPrefix) }

func (ch *channel) consumeReplyTo(m *amqp.BasicConsume) error {
	if !m.NoAck {
		return amqp.Errorf(amqp.PreconditionFailed, "reply consumer cannot acknowledge")
	}
	ch.mu.Lock()
	if ch.replyTo != nil {
		ch.mu.Unlock()
		return amqp.Errorf(amqp.PreconditionFailed, "reply consumer already set")
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = serverName("amq.ctag-")
	}
	ch.replyTo = &replyToConsumer{tag: tag, token: serverName("")}
	token := ch.replyTo.token
	ch.mu.Unlock()
	r := &ch.c.srv.replyTo
	r.mu.Lock()
	r.channels[token] = ch
	r.mu.Unlock()
	if !m.NoWait {
		ch.send(&amqp.BasicConsumeOk{ConsumerTag: tag})
	}
	return nil
}

// replyToAddress returns the reply-to address for this channel's requests.
func (ch *channel) replyToAddress() (string, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.replyTo == nil {
		return "", amqp.Errorf(amqp.PreconditionFailed, "fast reply consumer does not exist")
	}
	return replyToPrefix + ch.replyTo.token, nil
}

// cancelReplyTo cancels the reply-to consumer with tag; it reports whether there was one.
func (ch *channel) cancelReplyTo(tag string) bool {
	ch.mu.Lock()
	rc := ch.replyTo
	if rc == nil || rc.tag != tag {
		ch.mu.Unlock()
		return false
	}
	ch.replyTo = nil
	ch.mu.Unlock()
	r := &ch.c.srv.replyTo
	r.mu.Lock()
	delete(r.channels, rc.token)
	r.mu.Unlock()
	return true
}

// unregisterChannel drops a closing channel's reply-to consumer.
func (r *replyToRegistry) unregisterChannel(ch *channel) {
	ch.mu.Lock()
	rc := ch.replyTo
	ch.replyTo = nil
	ch.mu.Unlock()
	if rc != nil {
		r.mu.Lock()
		delete(r.channels, rc.token)
		r.mu.Unlock()
	}
}

// live reports whether a channel consumes replies under token.
func (r *replyToRegistry) live(token string) bool {
	r.mu.Lock()
	ch := r.channels[token]
	r.mu.Unlock()
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return !ch.closed && ch.replyTo != nil && ch.replyTo.token == token
}

// declareReplyTo answers a queue.declare (passive or not, whatever its
// flags) of a name under the direct reply-to pseudo-queue as RabbitMQ
// does, so that an RPC server can check that its requester is still
// there: the pseudo-queue itself and the address of a requester that
// still consumes replies exist, with no messages and one consumer; any
// other such name is 404.
func (ch *channel) declareReplyTo(name string, noWait bool) error {
	if name != replyToQueue && !(isReplyToAddress(name) && ch.c.srv.replyTo.live(strings.TrimPrefix(name, replyToPrefix))) {
		return ch.vhost().notFoundQueue(name)
	}
	ch.lastQueue = name
	if !noWait {
		ch.send(&amqp.QueueDeclareOk{Queue: name, ConsumerCount: 1})
	}
	return nil
}

// deliver sends a reply to the channel its routing key names; it reports
// whether that channel still consumes replies.
func (r *replyToRegistry) deliver(msg *queue.Message) bool {
	token := strings.TrimPrefix(msg.RoutingKey, replyToPrefix)
	r.mu.Lock()
	ch := r.channels[token]
	r.mu.Unlock()
	if ch == nil {
		return false
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || ch.replyTo == nil {
		return false
	}
	ch.nextTag++
	d := amqp.BasicDeliver{ConsumerTag: ch.replyTo.tag, DeliveryTag: ch.nextTag, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey}
	ch.c.out.content(ch.id, &d, &msg.Properties, msg.Body)
	return true
}
