package queue

import (
	"time"

	"github.com/warrenmq/warren/amqp"
)

// Overflow is what a queue does when a publish would take it past its
// max-length or max-length-bytes (x-overflow).
type Overflow uint8

// Overflow modes.
const (
	DropHead         Overflow = iota // drop (dead-letter "maxlen") from the head; the default
	RejectPublish                    // refuse the new message
	RejectPublishDLX                 // refuse the new message and dead-letter it ("maxlen")
)

// String returns the x-overflow argument value of the mode.
func (o Overflow) String() string {
	switch o {
	case RejectPublish:
		return "reject-publish"
	case RejectPublishDLX:
		return "reject-publish-dlx"
	}
	return "drop-head"
}

// Config is a queue's definition and effective arguments, already validated
// (by ParseArguments). The zero value is not a useful configuration: "no
// limit" is negative for MessageTTL, MaxLength and MaxLengthBytes; start from
// DefaultConfig or ParseArguments.
type Config struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       amqp.Table // as declared (for equivalence checks and listing)

	MessageTTL     time.Duration // x-message-ttl; <0: none
	Expires        time.Duration // x-expires; <=0: none
	MaxLength      int64         // x-max-length; <0: none
	MaxLengthBytes int64         // x-max-length-bytes; <0: none
	Overflow       Overflow      // x-overflow
	MaxPriority    uint8         // x-max-priority; 0: no priorities

	SingleActiveConsumer bool // x-single-active-consumer

	DeadLetterExchange      string // x-dead-letter-exchange; "" is the default exchange
	HasDeadLetterExchange   bool
	DeadLetterRoutingKey    string // x-dead-letter-routing-key
	HasDeadLetterRoutingKey bool
}

// DefaultConfig returns the configuration of a queue declared with no
// x-arguments.
func DefaultConfig(name string) Config {
	return Config{Name: name, MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1}
}

// hasLengthLimit reports whether max-length or max-length-bytes applies.
func (c *Config) hasLengthLimit() bool { return c.MaxLength >= 0 || c.MaxLengthBytes >= 0 }
