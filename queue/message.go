package queue

import "github.com/warrenmq/warren/amqp"

// Message is one published message. It is immutable after publish and shared
// (by pointer) by every queue it was routed to.
type Message struct {
	ID         uint64 // broker-wide, increasing; the store's key
	Exchange   string
	RoutingKey string
	Properties amqp.Properties
	Body       []byte
}

// Persistent reports whether the message asked to be stored on disk
// (delivery-mode 2).
func (m *Message) Persistent() bool {
	return m.Properties.DeliveryMode == amqp.DeliveryModePersistent
}

// Size is the body length in bytes, the measure used by x-max-length-bytes
// and ReadyBytes.
func (m *Message) Size() int { return len(m.Body) }
