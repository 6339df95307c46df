package broker

import (
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// contentState assembles a basic.publish: the method, then a content
// header, then body frames until the announced size is reached.
type contentState struct {
	phase      uint8 // 0: none, 1: header expected, 2: body expected
	exchange   string
	routingKey string
	mandatory  bool
	hdr        amqp.ContentHeader
	body       []byte
}

const (
	phaseNone uint8 = iota
	phaseHeader
	phaseBody
)

func (s *contentState) expecting() bool { return s.phase != phaseNone }

// maxInitialBody caps the first allocation for a body; larger bodies grow as
// their frames arrive, so a lying header cannot reserve memory it never sends.
const maxInitialBody = 4 << 20

func (ch *channel) onPublish(m *amqp.BasicPublish) error {
	if m.Immediate {
		return amqp.Errorf(amqp.NotImplemented, "immediate=true")
	}
	ch.content.phase = phaseHeader
	ch.content.exchange = m.Exchange
	ch.content.routingKey = m.RoutingKey
	ch.content.mandatory = m.Mandatory
	return nil
}

// onContent handles a header or body frame.
func (ch *channel) onContent(f amqp.Frame) error {
	s := &ch.content
	switch {
	case f.Type == amqp.FrameHeader && s.phase == phaseHeader:
		if err := s.hdr.Decode(f.Payload); err != nil {
			return err
		}
		if s.hdr.ClassID != amqp.ClassBasic {
			return amqp.Errorf(amqp.UnexpectedFrame, "expected content header for class %d, got one for class %d instead", amqp.ClassBasic, s.hdr.ClassID)
		}
		if max := ch.c.srv.cfg.MaxMessageSize; s.hdr.BodySize > max {
			s.phase = phaseNone
			return amqp.Errorf(amqp.PreconditionFailed, "message size %d is larger than configured max size %d", s.hdr.BodySize, max)
		}
		s.body = make([]byte, 0, min(s.hdr.BodySize, maxInitialBody))
		if s.hdr.BodySize == 0 {
			return ch.publishComplete()
		}
		s.phase = phaseBody
		return nil
	case f.Type == amqp.FrameBody && s.phase == phaseBody:
		if uint64(len(s.body))+uint64(len(f.Payload)) > s.hdr.BodySize {
			return amqp.Errorf(amqp.FrameError, "content body exceeds the %d bytes announced in the header", s.hdr.BodySize)
		}
		s.body = append(s.body, f.Payload...)
		if uint64(len(s.body)) == s.hdr.BodySize {
			return ch.publishComplete()
		}
		return nil
	case f.Type == amqp.FrameHeader:
		return amqp.Errorf(amqp.UnexpectedFrame, "expected method frame, got non method frame instead")
	default:
		if s.phase == phaseHeader {
			return amqp.Errorf(amqp.UnexpectedFrame, "expected content header for class 60, got non content header frame instead")
		}
		return amqp.Errorf(amqp.UnexpectedFrame, "expected method frame, got non method frame instead")
	}
}

// publishComplete runs a fully received basic.publish.
func (ch *channel) publishComplete() error {
	s := &ch.content
	s.phase = phaseNone
	body := s.body
	s.body = nil
	v := ch.vhost()
	if err := ch.checkPublish(s.exchange); err != nil {
		return err
	}
	ex := v.Exchange(s.exchange)
	if ex == nil {
		if ex = v.findExchange(s.exchange); ex == nil {
			return v.notFoundExchange(s.exchange)
		}
	}
	if ex.Internal {
		return amqp.Errorf(amqp.AccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", s.exchange, v.name)
	}
	props := s.hdr.Properties
	s.hdr.Properties = amqp.Properties{}
	if props.UserID != "" && props.UserID != ch.c.user.Name && !slices.Contains(ch.c.user.Tags, "impersonator") {
		// As in RabbitMQ, an impersonator may publish for others; the
		// tags are those the user had when the connection opened.
		return amqp.Errorf(amqp.PreconditionFailed, "user_id property set to '%s' but authenticated user was '%s'", props.UserID, ch.c.user.Name)
	}
	if props.Expiration != "" {
		if _, err := queue.ParseExpiration(props.Expiration); err != nil {
			return err
		}
	}
	if err := checkRoutingHeaders(props.Headers); err != nil {
		return err
	}
	if props.ReplyTo == replyToQueue {
		addr, err := ch.replyToAddress()
		if err != nil {
			return err
		}
		props.ReplyTo = addr
	}
	msg := &queue.Message{
		ID:         ch.c.srv.newMessageID(),
		Exchange:   s.exchange,
		RoutingKey: s.routingKey,
		Properties: props,
		Body:       body,
	}
	if ch.tx != nil {
		ch.tx.publish(ex, msg, s.mandatory)
		return nil
	}
	var seq uint64
	if ch.confirms != nil {
		seq = ch.confirms.next()
	}
	ch.enqueue(ex, msg, s.mandatory, seq)
	ch.c.waitIfBlocked()
	return nil
}

// checkPublish checks write access to the exchange, remembering the last
// exchange allowed until users or permissions change.
func (ch *channel) checkPublish(exchange string) error {
	gen := ch.c.srv.users.Generation()
	if ch.writeOK.gen == gen && ch.writeOK.exchange == exchange && ch.writeOK.valid {
		return nil
	}
	if err := ch.c.check(AccessWrite, "exchange", exchange); err != nil {
		return err
	}
	ch.writeOK.gen, ch.writeOK.exchange, ch.writeOK.valid = gen, exchange, true
	return nil
}

// enqueue routes msg from ex into its queues. seq is the publisher-confirm
// sequence number (0 without confirms).
func (ch *channel) enqueue(ex *exchange.Exchange, msg *queue.Message, mandatory bool, seq uint64) {
	srv := ch.c.srv
	v := ch.vhost()
	if ex.Name == "" && isReplyToAddress(msg.RoutingKey) {
		delivered := srv.replyTo.deliver(msg)
		if !delivered && mandatory {
			ch.sendReturn(msg, amqp.NoRoute, "NO_ROUTE")
		}
		ch.confirmOnReader(seq, true)
		return
	}
	ch.stats.Inc(StatPublish)
	ex.PublishIn.Add(1)
	queues := v.route(&ch.router, ex, msg, ch.routed[:0])
	defer ch.keepRouted(queues)
	if len(queues) == 0 {
		if mandatory {
			ch.stats.Inc(StatReturnUnroutable)
			ch.sendReturn(msg, amqp.NoRoute, "NO_ROUTE")
		} else {
			ch.stats.Inc(StatDropUnroutable)
		}
		ch.confirmOnReader(seq, true)
		return
	}
	msg = stripBCC(msg)
	var outcome *publishOutcome
	if seq != 0 {
		outcome = &publishOutcome{ch: ch, seq: seq}
		outcome.pending.Store(1)
	} else if ch.txCommit != nil {
		// A committing transaction waits for the queues on other nodes.
		srv.persistMessage(msg, queues, nil)
		publishToQueues(ex, msg, queues, ch.txCommit)
		ch.pace(queues)
		waitRemote(queues)
		return
	}
	srv.persistMessage(msg, queues, outcome)
	rejected := publishToQueues(ex, msg, queues, outcome)
	if outcome != nil {
		if rejected {
			outcome.nack.Store(true)
		}
		if outcome.pending.Add(-1) == 0 {
			ch.confirmOnReader(seq, !outcome.nack.Load())
		}
	}
	ch.pace(queues)
	waitRemote(queues)
}

// maxKeptRouted bounds the routing scratch a channel keeps between publishes.
const maxKeptRouted = 1024

// keepRouted keeps the slice a publish was routed into for the next one:
// nothing holds the queues past the publish.
func (ch *channel) keepRouted(queues []QueueHandle) {
	clear(queues)
	if cap(queues) <= maxKeptRouted {
		ch.routed = queues[:0]
	}
}

// publishToQueues enqueues a routed message into its queues, which
// persistMessage has already been given, and reports whether a queue
// rejected it (x-overflow reject-publish). A queue deleted meanwhile
// drops it. With outcome (confirm mode) a queue on another node adds to
// it: the confirm waits for that node's answer, and a refusal or an
// unreachable node nacks it.
func publishToQueues(ex *exchange.Exchange, msg *queue.Message, queues []QueueHandle, outcome *publishOutcome) (rejected bool) {
	ex.PublishOut.Add(uint64(len(queues)))
	for _, q := range queues {
		if rq, ok := q.(RemoteQueue); ok && outcome != nil {
			outcome.pending.Add(1)
			rq.PublishConfirm(msg, outcome.remoteDone)
			continue
		}
		if q.Publish(msg) == queue.Rejected {
			rejected = true
		}
	}
	return rejected
}

// remoteDone takes the answer of a queue on another node.
func (o *publishOutcome) remoteDone(res queue.PublishResult) {
	if res == queue.Rejected {
		o.nack.Store(true)
	}
	o.done()
}

// waitRemote holds a publishing connection while a link to the home node
// of a queue it published to has too much waiting to be sent.
func waitRemote(queues []QueueHandle) {
	for _, q := range queues {
		if rq, ok := q.(RemoteQueue); ok {
			rq.WaitRoom()
		}
	}
}

// publishOutcome resolves one confirm once every part of the publish
// (enqueueing in local and remote queues, and the group commit when the
// message is durable) is done.
type publishOutcome struct {
	ch      *channel
	seq     uint64
	stored  chan<- error              // instead of ch: told nil, or errStoreFailed on a nack
	notify  func(queue.PublishResult) // instead of ch: a publish from another node (PublishHome)
	pending atomic.Int32
	nack    atomic.Bool
	dropped atomic.Bool // for notify: the queue was gone
}

func (o *publishOutcome) done() {
	if o.pending.Add(-1) != 0 {
		return
	}
	if o.notify != nil {
		switch {
		case o.nack.Load():
			o.notify(queue.Rejected)
		case o.dropped.Load():
			o.notify(queue.Dropped)
		default:
			o.notify(queue.Accepted)
		}
		return
	}
	if o.stored != nil {
		var err error
		if o.nack.Load() {
			err = errStoreFailed
		}
		o.stored <- err
		return
	}
	o.ch.confirm(o.seq, !o.nack.Load())
}

// errStoreFailed reports a persistent message the store could not keep.
var errStoreFailed = errors.New("the message could not be stored")

// confirm resolves a publisher-confirm sequence number (0: not in confirm
// mode) and sends what can be confirmed; any goroutine may call it.
func (ch *channel) confirm(seq uint64, ack bool) {
	if seq != 0 {
		ch.confirms.resolve(seq, ack)
		if ack {
			ch.stats.Inc(StatConfirm)
		}
	}
}

// confirmOnReader resolves seq on the reader goroutine; the confirms go out
// when the reader has handled what it has buffered (conn.flushConfirms).
func (ch *channel) confirmOnReader(seq uint64, ack bool) {
	if seq == 0 {
		return
	}
	ch.confirms.mark(seq, ack)
	if ack {
		ch.stats.Inc(StatConfirm)
	}
	ch.c.confirmDirty = append(ch.c.confirmDirty, ch)
	if len(ch.c.confirmDirty) >= maxDeferredConfirms {
		ch.c.flushConfirms()
	}
}

// maxDeferredConfirms bounds how many confirms wait for the end of a burst.
const maxDeferredConfirms = 512

// flushConfirms sends the confirms marked on the reader goroutine.
func (c *conn) flushConfirms() {
	for i, ch := range c.confirmDirty {
		if ch.confirms != nil {
			ch.confirms.flush()
		}
		c.confirmDirty[i] = nil
	}
	c.confirmDirty = c.confirmDirty[:0]
}

// sendReturn sends basic.return for an unroutable mandatory message.
func (ch *channel) sendReturn(msg *queue.Message, code uint16, text string) {
	ch.c.out.content(ch.id, &amqp.BasicReturn{ReplyCode: code, ReplyText: text, Exchange: msg.Exchange, RoutingKey: msg.RoutingKey}, &msg.Properties, msg.Body)
}

// stripBCC returns msg without its BCC header (a copy when it had one).
func stripBCC(msg *queue.Message) *queue.Message {
	if _, ok := msg.Properties.Headers["BCC"]; !ok {
		return msg
	}
	c := *msg
	h := make(amqp.Table, len(msg.Properties.Headers))
	for k, v := range msg.Properties.Headers {
		if k != "BCC" {
			h[k] = v
		}
	}
	c.Properties.Headers = h
	return &c
}

// route returns the queues msg reaches from ex, each once: the routing
// key and the keys of the CC and BCC headers apply together at every
// exchange on the way (see exchange.Router.Route), as in RabbitMQ.
func (v *Vhost) route(r *exchange.Router, ex *exchange.Exchange, msg *queue.Message, out []QueueHandle) []QueueHandle {
	var buf [4]string
	keys := append(buf[:0], msg.RoutingKey)
	if h := msg.Properties.Headers; h != nil {
		for _, hk := range routingHeaders {
			keys = appendHeaderKeys(keys, h[hk])
		}
	}
	return v.routeKeys(r, ex, keys, msg.Properties.Headers, out)
}

// routingHeaders are the headers whose arrays of strings add routing
// keys to a message (BCC is removed before the message is stored).
var routingHeaders = [...]string{"CC", "BCC"}

// appendHeaderKeys appends the strings of a CC or BCC header's array;
// other elements are ignored, as in RabbitMQ.
func appendHeaderKeys(keys []string, v any) []string {
	arr, _ := v.([]any)
	for _, k := range arr {
		if s, ok := k.(string); ok {
			keys = append(keys, s)
		}
	}
	return keys
}

// checkRoutingHeaders refuses a CC or BCC header that is not an array, as
// RabbitMQ does (406, the message is not routed).
func checkRoutingHeaders(h amqp.Table) error {
	for _, hk := range routingHeaders {
		v, ok := h[hk]
		if !ok {
			continue
		}
		if _, isArray := v.([]any); !isArray {
			return amqp.Errorf(amqp.PreconditionFailed, "invalid message: {unacceptable_type_in_header,\"%s\",%s}", hk, amqp.TypeName(v))
		}
	}
	return nil
}

// routeKeys returns the queues a message with these routing keys and
// headers reaches from ex: the default exchange takes each key as a
// queue's name; other exchanges route through the exchange graph.
func (v *Vhost) routeKeys(r *exchange.Router, ex *exchange.Exchange, keys []string, headers amqp.Table, out []QueueHandle) []QueueHandle {
	if ex.Name == "" {
		for _, k := range keys {
			if q := v.queue(k); q != nil {
				out = appendQueue(out, q)
			}
		}
		return out
	}
	for _, name := range r.Route(ex, v.Exchange, v.alternateExchange, keys, headers) {
		if q := v.queue(name); q != nil {
			out = appendQueue(out, q)
		}
	}
	return out
}

// alternateExchange returns ex's alternate exchange, or nil.
func (v *Vhost) alternateExchange(ex *exchange.Exchange) *exchange.Exchange {
	name, ok := ex.Args["alternate-exchange"].(string)
	if !ok {
		name = v.policyAlternateExchange(ex.Name)
	}
	if name == "" || name == ex.Name {
		return nil
	}
	return v.Exchange(name)
}

func appendQueue(out []QueueHandle, q QueueHandle) []QueueHandle {
	for _, x := range out {
		if x == q {
			return out
		}
	}
	return append(out, q)
}

// deadLetter republishes messages a queue dead-lettered to its DLX.
func (s *Server) deadLetter(v *Vhost, q *localQueue, dead []queue.DeadLetter) {
	cfg := q.queue.Config()
	dlx := v.Exchange(cfg.DeadLetterExchange)
	if dlx == nil {
		return // RabbitMQ drops dead letters whose DLX does not exist
	}
	r := s.routers.Get().(*exchange.Router)
	defer s.routers.Put(r)
	now := time.Now()
	for _, d := range dead {
		msg := q.queue.DeadLetterMessage(d, now, s.newMessageID())
		var targets []QueueHandle
		if cfg.HasDeadLetterRoutingKey {
			targets = v.routeKeys(r, dlx, []string{msg.RoutingKey}, msg.Properties.Headers, nil)
		} else {
			targets = v.route(r, dlx, msg, nil)
		}
		kept := targets[:0]
		for _, t := range targets {
			if !queue.DeadLetterCycle(msg, t.Name()) {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			continue
		}
		s.persistMessage(msg, kept, nil)
		for _, t := range kept {
			t.Publish(msg)
		}
	}
}
