package queue

import "errors"

// Errors returned by AddConsumer.
var (
	// ErrExclusiveConsumer: the queue has an exclusive consumer, or an
	// exclusive consumer was asked while the queue has consumers or uses
	// single active consumer. The broker answers 403 ACCESS_REFUSED
	// "queue 'q' in vhost '/' in exclusive use".
	ErrExclusiveConsumer = errors.New("queue in exclusive use")
	// ErrQueueDeleted: the queue was deleted.
	ErrQueueDeleted = errors.New("queue deleted")
	// ErrConsumerExists: the same Consumer value was added twice.
	ErrConsumerExists = errors.New("consumer already registered on the queue")
	// ErrInvalidConsumer: the Consumer is nil or its dynamic value is not
	// comparable (it must be usable as a map key, e.g. a pointer).
	ErrInvalidConsumer = errors.New("consumer is nil or not comparable")
)
