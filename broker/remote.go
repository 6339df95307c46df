package broker

import (
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/queue"
)

// In a cluster a shared queue lives on one node, its home (meta.Queue's
// Node). Every node routes to it, and the nodes other than its home reach
// it through a RemoteQueue that Config.Remote provides; the home serves
// them through HomeQueue and PublishHome. A standalone broker (no Remote)
// keeps every queue local, whatever home its record names.

// Remote connects a broker to the other nodes of its cluster. The
// cluster implements it (Config.Remote); the broker never imports the
// cluster.
type Remote interface {
	// NodeName returns this node's name: the home of the queues declared
	// here with the client-local locator (the default).
	NodeName() string
	// BalancedNode returns the home for a new queue with the balanced
	// locator: the running node with the fewest queues.
	BalancedNode() string
	// QueueHandle returns a handle on q, a queue whose home is another
	// node. The metadata applier calls it: it must not block.
	QueueHandle(q meta.Queue) RemoteQueue
	// Serve gives the remote this broker, whose queues it serves to the
	// other nodes. New calls it before it opens the metadata log.
	Serve(s *Server)
}

// RemoteQueue is the QueueHandle of a queue whose home is another node.
// When that node cannot be reached its methods fail soft: Publish
// returns queue.Rejected, Get finds nothing, Counts are zero, and
// AddConsumer returns Available's error.
type RemoteQueue interface {
	QueueHandle
	// Node returns the queue's home node.
	Node() string
	// Available returns nil when the home node can be reached, else the
	// 404 that RabbitMQ gives for a queue whose node is down.
	Available() error
	// PublishConfirm enqueues like Publish and calls done, on any
	// goroutine, with the home node's answer: Accepted once the queue
	// took the message (a persistent message for a durable queue: once
	// it is on the home node's disk), Rejected when it refused it or
	// could not be reached, Dropped when the queue is gone.
	PublishConfirm(m *queue.Message, done func(queue.PublishResult))
	// WaitRoom blocks the caller, a publishing connection, while too
	// much waits to be sent to the home node (publisher back-pressure).
	WaitRoom()
}

// HomeDownError is RabbitMQ's 404 for a queue whose home node is down.
func HomeDownError(node string, q meta.Queue) *amqp.Error {
	durable := ""
	if q.Durable {
		durable = "durable "
	}
	return amqp.Errorf(amqp.NotFound, "home node '%s' of %squeue '%s' in vhost '%s' is down or inaccessible", node, durable, q.Name, q.Vhost)
}

// nodeName returns this node's name ("" on a standalone broker).
func (s *Server) nodeName() string {
	if s.cfg.Remote == nil {
		return ""
	}
	return s.cfg.Remote.NodeName()
}

// remoteHandle returns the handle of a queue record whose home is
// another node, or nil when the queue is this node's.
func (s *Server) remoteHandle(r *meta.Queue) RemoteQueue {
	if s.cfg.Remote == nil || r.Node == "" || r.Node == s.cfg.Remote.NodeName() {
		return nil
	}
	return s.cfg.Remote.QueueHandle(*r)
}

// placeQueue returns the home of a queue about to be declared on this
// node in v (nil: a vhost not running yet, as in a definitions import):
// "" on a standalone broker; in a cluster this node, or with the balanced
// locator (x-queue-leader-locator, else the queue-leader-locator key of
// the policy that applies) the node with the fewest queues. It is decided
// before the declare is proposed, so that every node applies the same
// choice.
func (s *Server) placeQueue(v *Vhost, name string, args amqp.Table) string {
	r := s.cfg.Remote
	if r == nil {
		return ""
	}
	locator, ok := args["x-queue-leader-locator"].(string)
	if !ok && v != nil {
		if p := v.effectivePolicy("queues", name); p != nil {
			locator, _ = p.Definition["queue-leader-locator"].(string)
		}
	}
	switch locator {
	case "balanced", "random", "least-leaders":
		if node := r.BalancedNode(); node != "" {
			return node
		}
	}
	return r.NodeName()
}

// available returns the error for a queue whose home node cannot be
// reached (nil for local queues).
func available(q QueueHandle) error {
	if rq, ok := q.(RemoteQueue); ok {
		return rq.Available()
	}
	return nil
}

// HomeQueue returns the shared queue named name in vhost if this node is
// its home, else nil. The cluster serves the other nodes with it. After a
// miss it catches up with the cluster and looks again (lookAgain): a
// node that declared a queue homed here may have applied the declare
// before this one.
func (s *Server) HomeQueue(vhost, name string) QueueHandle {
	if q := s.homeQueue(vhost, name); q != nil || !s.lookAgain() {
		return q
	}
	return s.homeQueue(vhost, name)
}

func (s *Server) homeQueue(vhost, name string) QueueHandle {
	v := s.Vhost(vhost)
	if v == nil {
		return nil
	}
	q := v.localQueue(name)
	if q == nil || q.owner != nil {
		return nil
	}
	return q
}

// PublishHome enqueues a message that another node routed to the queue
// named name in vhost, whose home is this node. The message gets a new id
// of this node (ids order a queue's stored messages). done is called
// once, on any goroutine: Accepted once the queue took it and, when it is
// persistent and the queue durable, once it is on disk; Rejected if the
// queue refused it or the store failed; Dropped if there is no such queue
// here.
func (s *Server) PublishHome(vhost, name string, m *queue.Message, done func(queue.PublishResult)) {
	q, _ := s.HomeQueue(vhost, name).(*localQueue)
	if q == nil {
		done(queue.Dropped)
		return
	}
	m.ID = s.newMessageID()
	o := &publishOutcome{notify: done}
	o.pending.Store(1)
	targets := [1]QueueHandle{q}
	s.persistMessage(m, targets[:], o)
	switch q.Publish(m) {
	case queue.Rejected:
		o.nack.Store(true)
	case queue.Dropped:
		o.dropped.Store(true)
	}
	o.done()
}
