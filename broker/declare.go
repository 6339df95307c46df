package broker

import (
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// Handlers for exchange.* and queue.*.

// stripCRLF removes every CR and LF from a queue or exchange name, as
// RabbitMQ does with the names that queue.declare, exchange.declare, the
// binds, unbinds and deletes are given (a client that declared "x\n" may
// then use "x"). basic.publish, basic.get, basic.consume and queue.purge
// take names as they are, as in RabbitMQ.
func stripCRLF(name string) string {
	if !strings.ContainsAny(name, "\r\n") {
		return name
	}
	return strings.NewReplacer("\r", "", "\n", "").Replace(name)
}

func (ch *channel) onExchangeDeclare(m *amqp.ExchangeDeclare) error {
	m.Exchange = stripCRLF(m.Exchange)
	v := ch.vhost()
	if !m.Passive {
		if err := ch.c.check(AccessConfigure, "exchange", m.Exchange); err != nil {
			return err
		}
	}
	_, err := v.DeclareExchange(ExchangeSpec{
		Name: m.Exchange, Kind: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete,
		Internal: m.Internal, Args: m.Arguments,
	}, m.Passive)
	if err != nil {
		return err
	}
	if !m.NoWait {
		ch.send(&amqp.ExchangeDeclareOk{})
	}
	return nil
}

func (ch *channel) onExchangeDelete(m *amqp.ExchangeDelete) error {
	m.Exchange = stripCRLF(m.Exchange)
	if err := ch.c.check(AccessConfigure, "exchange", m.Exchange); err != nil {
		return err
	}
	if err := ch.vhost().DeleteExchange(m.Exchange, m.IfUnused); err != nil {
		return err
	}
	if !m.NoWait {
		ch.send(&amqp.ExchangeDeleteOk{})
	}
	return nil
}

func (ch *channel) onExchangeBind(m *amqp.ExchangeBind) error {
	m.Source, m.Destination = stripCRLF(m.Source), stripCRLF(m.Destination)
	b := exchange.Binding{Source: m.Source, Destination: exchange.Destination{Name: m.Destination, IsExchange: true}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.checkBind(b); err != nil {
		return err
	}
	if err := ch.vhost().Bind(b); err != nil {
		return err
	}
	if !m.NoWait {
		ch.send(&amqp.ExchangeBindOk{})
	}
	return nil
}

func (ch *channel) onExchangeUnbind(m *amqp.ExchangeUnbind) error {
	m.Source, m.Destination = stripCRLF(m.Source), stripCRLF(m.Destination)
	b := exchange.Binding{Source: m.Source, Destination: exchange.Destination{Name: m.Destination, IsExchange: true}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.checkBind(b); err != nil {
		return err
	}
	if err := ch.vhost().Unbind(b); err != nil {
		return err
	}
	if !m.NoWait {
		ch.send(&amqp.ExchangeUnbindOk{})
	}
	return nil
}

// checkBind checks RabbitMQ's permissions for (un)binding: write on the
// destination, read on the source.
func (ch *channel) checkBind(b exchange.Binding) error {
	kind := "queue"
	if b.Destination.IsExchange {
		kind = "exchange"
	}
	if err := ch.c.check(AccessWrite, kind, b.Destination.Name); err != nil {
		return err
	}
	return ch.c.check(AccessRead, "exchange", b.Source)
}

// bindingKey is the routing key of a queue.bind or queue.unbind that
// named queue (possibly "") with key: RabbitMQ's shortcut makes the key
// of a bind that gives neither the name of the last declared queue.
func (ch *channel) bindingKey(queue, key string) string {
	if queue == "" && key == "" {
		return ch.lastQueue
	}
	return key
}

// queueName resolves the empty name to the channel's last declared queue.
func (ch *channel) queueName(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", amqp.Errorf(amqp.NotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

func (ch *channel) onQueueDeclare(m *amqp.QueueDeclare) error {
	v := ch.vhost()
	name := stripCRLF(m.Queue)
	if strings.HasPrefix(name, replyToQueue) {
		return ch.declareReplyTo(name, m.NoWait)
	}
	// An empty name declares a server-named queue; a passive declare
	// takes it as it is (RabbitMQ: 404 no queue ''), not as the last
	// declared queue.
	serverNamed := name == "" && !m.Passive
	if serverNamed {
		name = serverName("amq.gen-")
	}
	if !m.Passive {
		if err := ch.c.check(AccessConfigure, "queue", name); err != nil {
			return err
		}
	}
	q, err := v.declareQueue(QueueSpec{
		Name: name, Durable: m.Durable, Exclusive: m.Exclusive, AutoDelete: m.AutoDelete, Args: m.Arguments,
		ServerNamed: serverNamed,
	}, m.Passive, ch.c)
	if err != nil {
		return err
	}
	ch.lastQueue = name
	if !m.NoWait {
		ready, _, consumers := q.Counts()
		ch.send(&amqp.QueueDeclareOk{Queue: name, MessageCount: uint32(ready), ConsumerCount: uint32(consumers)})
	}
	return nil
}

func (ch *channel) onQueueBind(m *amqp.QueueBind) error {
	m.Queue, m.Exchange = stripCRLF(m.Queue), stripCRLF(m.Exchange)
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	key := ch.bindingKey(m.Queue, m.RoutingKey)
	b := exchange.Binding{Source: m.Exchange, Destination: exchange.Destination{Name: name}, Key: key, Args: m.Arguments}
	if err := ch.checkBind(b); err != nil {
		return err
	}
	if err := ch.checkExclusive(name); err != nil {
		return err
	}
	if err := ch.vhost().Bind(b); err != nil {
		return err
	}
	if !m.NoWait {
		ch.send(&amqp.QueueBindOk{})
	}
	return nil
}

func (ch *channel) onQueueUnbind(m *amqp.QueueUnbind) error {
	m.Queue, m.Exchange = stripCRLF(m.Queue), stripCRLF(m.Exchange)
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	key := ch.bindingKey(m.Queue, m.RoutingKey)
	b := exchange.Binding{Source: m.Exchange, Destination: exchange.Destination{Name: name}, Key: key, Args: m.Arguments}
	if err := ch.checkBind(b); err != nil {
		return err
	}
	if err := ch.checkExclusive(name); err != nil {
		return err
	}
	if err := ch.vhost().Unbind(b); err != nil {
		return err
	}
	ch.send(&amqp.QueueUnbindOk{})
	return nil
}

// checkExclusive refuses access to another connection's exclusive queue.
func (ch *channel) checkExclusive(name string) error {
	v := ch.vhost()
	if q := v.localQueue(name); q != nil && q.owner != nil && q.owner != ch.c {
		return v.lockedQueue(name)
	}
	return nil
}

// lookupQueue finds a queue for basic.consume, get and purge.
func (ch *channel) lookupQueue(name string) (QueueHandle, error) {
	name, err := ch.queueName(name)
	if err != nil {
		return nil, err
	}
	v := ch.vhost()
	q := v.findQueue(name)
	if q == nil {
		return nil, v.notFoundQueue(name)
	}
	if o := ownerOf(q); o != nil && o != ch.c {
		return nil, v.lockedQueue(name)
	}
	if err := available(q); err != nil {
		return nil, err
	}
	return q, nil
}

func (ch *channel) onQueuePurge(m *amqp.QueuePurge) error {
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if err := ch.c.check(AccessRead, "queue", name); err != nil {
		return err
	}
	q, err := ch.lookupQueue(name)
	if err != nil {
		return err
	}
	n := q.Purge()
	if !m.NoWait {
		ch.send(&amqp.QueuePurgeOk{MessageCount: uint32(n)})
	}
	return nil
}

func (ch *channel) onQueueDelete(m *amqp.QueueDelete) error {
	name, err := ch.queueName(stripCRLF(m.Queue))
	if err != nil {
		return err
	}
	if err := ch.c.check(AccessConfigure, "queue", name); err != nil {
		return err
	}
	n, err := ch.vhost().deleteQueue(name, m.IfUnused, m.IfEmpty, ch.c)
	if err != nil {
		return err
	}
	if !m.NoWait {
		ch.send(&amqp.QueueDeleteOk{MessageCount: uint32(n)})
	}
	return nil
}

// check returns 403 ACCESS_REFUSED unless the connection's user has access
// to the resource (kind "queue" or "exchange"; the default exchange is amq.default).
func (c *conn) check(a Access, kind, name string) error {
	resource := name
	if kind == "exchange" && name == "" {
		resource = "amq.default"
	}
	if c.srv.users.Allowed(c.user.Name, c.vhost.name, a, resource) {
		return nil
	}
	return amqp.Errorf(amqp.AccessRefused, "access to %s '%s' in vhost '%s' refused for user '%s'",
		kind, resource, c.vhost.name, c.user.Name)
}
