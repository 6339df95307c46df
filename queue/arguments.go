package queue

import (
	"fmt"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// ParseArguments validates the x-arguments of queue.declare as RabbitMQ 3.10
// does and returns the configuration they give, with Name and Args set (the
// caller sets Durable, Exclusive and AutoDelete). Integer arguments may be of
// any AMQP integer type; unknown arguments are accepted and ignored.
//
// Errors are *amqp.Error 406 PRECONDITION_FAILED with RabbitMQ's text, e.g.
// "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}".
// Checks run in RabbitMQ's order, so the first failing argument is the one
// RabbitMQ names: the x-dead-letter-exchange type, x-queue-type, then
// x-expires, x-message-ttl, x-dead-letter-routing-key, x-max-length,
// x-max-length-bytes, x-max-priority, x-overflow, x-queue-mode,
// x-single-active-consumer, x-queue-leader-locator, and last the arguments
// of other queue types.
// Only classic queues exist here: x-queue-type "quorum" and "stream" are
// refused as unsupported.
func ParseArguments(vhost, name string, args amqp.Table) (Config, error) {
	cfg := DefaultConfig(name)
	cfg.Args = args
	p := argParser{vhost: vhost, name: name}

	if v, ok := args["x-dead-letter-exchange"]; ok {
		s, isString := v.(string)
		if !isString {
			return Config{}, amqp.Errorf(amqp.PreconditionFailed,
				"invalid type '%s' for arg 'x-dead-letter-exchange' in queue '%s' in vhost '%s'", amqp.TypeName(v), name, vhost)
		}
		cfg.DeadLetterExchange, cfg.HasDeadLetterExchange = s, true
	}
	if v, ok := args["x-queue-type"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			return Config{}, p.unacceptableType("x-queue-type", v)
		case s != "classic":
			return Config{}, p.invalid("x-queue-type", erlString("unsupported queue type '"+s+"'"))
		}
	}
	if v, ok := args["x-expires"]; ok {
		ms, err := p.expiry("x-expires", v, true)
		if err != nil {
			return Config{}, err
		}
		cfg.Expires = time.Duration(ms) * time.Millisecond
	}
	if v, ok := args["x-message-ttl"]; ok {
		ms, err := p.expiry("x-message-ttl", v, false)
		if err != nil {
			return Config{}, err
		}
		cfg.MessageTTL = time.Duration(ms) * time.Millisecond
	}
	if v, ok := args["x-dead-letter-routing-key"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			return Config{}, p.unacceptableType("x-dead-letter-routing-key", v)
		case !cfg.HasDeadLetterExchange:
			return Config{}, p.invalid("x-dead-letter-routing-key", "routing_key_but_no_dlx_defined")
		}
		cfg.DeadLetterRoutingKey, cfg.HasDeadLetterRoutingKey = s, true
	}
	if v, ok := args["x-max-length"]; ok {
		n, err := p.nonNegative("x-max-length", v)
		if err != nil {
			return Config{}, err
		}
		cfg.MaxLength = n
	}
	if v, ok := args["x-max-length-bytes"]; ok {
		n, err := p.nonNegative("x-max-length-bytes", v)
		if err != nil {
			return Config{}, err
		}
		cfg.MaxLengthBytes = n
	}
	if v, ok := args["x-max-priority"]; ok {
		n, err := p.nonNegative("x-max-priority", v)
		if err != nil {
			return Config{}, err
		}
		if n > 255 {
			return Config{}, p.invalid("x-max-priority", fmt.Sprintf("{max_value_exceeded,%d}", n))
		}
		cfg.MaxPriority = uint8(n)
	}
	if v, ok := args["x-overflow"]; ok {
		s, isString := v.(string)
		if !isString {
			return Config{}, p.unacceptableType("x-overflow", v)
		}
		switch s {
		case "drop-head":
			cfg.Overflow = DropHead
		case "reject-publish":
			cfg.Overflow = RejectPublish
		case "reject-publish-dlx":
			cfg.Overflow = RejectPublishDLX
		default:
			return Config{}, p.invalid("x-overflow", "invalid_overflow")
		}
	}
	if v, ok := args["x-queue-mode"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			return Config{}, p.unacceptableType("x-queue-mode", v)
		case s != "default" && s != "lazy":
			return Config{}, p.invalid("x-queue-mode", erlString("unsupported queue mode '"+s+"'"))
		}
	}
	if v, ok := args["x-single-active-consumer"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return Config{}, p.unacceptableType("x-single-active-consumer", v)
		}
		cfg.SingleActiveConsumer = b
	}
	if v, ok := args["x-queue-leader-locator"]; ok {
		s, isString := v.(string)
		switch {
		case !isString:
			return Config{}, p.unacceptableType("x-queue-leader-locator", v)
		case !ValidLeaderLocator(s):
			return Config{}, p.invalid("x-queue-leader-locator", "invalid_queue_locator_arg")
		}
	}
	// Arguments of other queue types that RabbitMQ refuses on a classic
	// queue, in the order they are checked.
	classicUnsupported := [...]string{
		"x-max-in-memory-length", "x-max-in-memory-bytes", "x-delivery-limit",
		"x-quorum-initial-group-size", "x-max-age", "x-stream-max-segment-size-bytes",
		"x-initial-cluster-size", "x-dead-letter-strategy",
	}
	for _, k := range classicUnsupported {
		if _, ok := args[k]; ok {
			return Config{}, amqp.Errorf(amqp.PreconditionFailed,
				"invalid arg '%s' for queue '%s' in vhost '%s' of queue type rabbit_classic_queue", k, name, vhost)
		}
	}
	return cfg, nil
}

// ValidLeaderLocator reports whether s is a queue leader locator
// (x-queue-leader-locator, the queue-leader-locator policy key), which
// places a new queue in a cluster: client-local (the node of the
// declaring connection) or balanced (the node with the fewest queues);
// random and least-leaders, RabbitMQ's older names, mean balanced.
func ValidLeaderLocator(s string) bool {
	switch s {
	case "client-local", "balanced", "random", "least-leaders":
		return true
	}
	return false
}

// ParseConsumeArguments validates the arguments of basic.consume as
// RabbitMQ 3.10 does and returns the consumer priority (x-priority, any
// integer type, default 0). x-cancel-on-ha-failover must be a bool; other
// arguments are ignored. Errors are *amqp.Error 406 PRECONDITION_FAILED, e.g.
// "invalid arg 'x-priority' for queue 'q' in vhost '/': \"expected integer, got longstr\"".
func ParseConsumeArguments(vhost, queueName string, args amqp.Table) (priority int, err error) {
	p := argParser{vhost: vhost, name: queueName}
	if v, ok := args["x-priority"]; ok {
		n, isInt := amqpInt(v)
		if !isInt {
			return 0, p.expectedInteger("x-priority", v)
		}
		priority = int(n)
	}
	if v, ok := args["x-cancel-on-ha-failover"]; ok {
		if _, isBool := v.(bool); !isBool {
			return 0, p.unacceptableType("x-cancel-on-ha-failover", v)
		}
	}
	return priority, nil
}

// argParser builds RabbitMQ's argument errors for one queue.
type argParser struct {
	vhost, name string
}

// invalid is RabbitMQ's "invalid arg" error with an Erlang error term.
func (p *argParser) invalid(key, term string) *amqp.Error {
	return amqp.Errorf(amqp.PreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s': %s", key, p.name, p.vhost, term)
}

func (p *argParser) unacceptableType(key string, v any) *amqp.Error {
	return p.invalid(key, "{unacceptable_type,"+amqp.TypeName(v)+"}")
}

func (p *argParser) expectedInteger(key string, v any) *amqp.Error {
	return p.invalid(key, `"expected integer, got `+amqp.TypeName(v)+`"`)
}

// nonNegative checks a non-negative integer argument.
func (p *argParser) nonNegative(key string, v any) (int64, error) {
	n, ok := amqpInt(v)
	switch {
	case !ok:
		return 0, p.expectedInteger(key, v)
	case n < 0:
		return 0, p.invalid(key, fmt.Sprintf("{value_negative,%d}", n))
	}
	return n, nil
}

// expiry checks a duration argument in milliseconds (x-expires must also be
// non-zero).
func (p *argParser) expiry(key string, v any, nonZero bool) (int64, error) {
	n, ok := amqpInt(v)
	switch {
	case !ok:
		return 0, p.expectedInteger(key, v)
	case nonZero && n == 0:
		return 0, p.invalid(key, "{value_zero,0}")
	case n < 0:
		return 0, p.invalid(key, fmt.Sprintf("{value_negative,%d}", n))
	case n > maxExpiryMillis:
		return 0, p.invalid(key, fmt.Sprintf("{value_too_large,%d}", n))
	}
	return n, nil
}
