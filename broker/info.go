package broker

import (
	"sort"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// Read-only views of the broker's state for management and metrics.

// ConnectionInfo describes one client connection.
type ConnectionInfo struct {
	Name             string
	ID               uint64
	User             string
	Vhost            string
	Peer             string
	Local            string
	ClientProperties amqp.Table
	Channels         int
	ChannelMax       uint16
	FrameMax         uint32
	Heartbeat        time.Duration
	ConnectedAt      time.Time
	RecvOct, SendOct uint64
	Stats            MessageStats
}

// ConnectionInfos lists the open connections that finished the handshake.
func (s *Server) ConnectionInfos() []ConnectionInfo {
	var out []ConnectionInfo
	for _, c := range s.connections() {
		if info, ok := c.info(); ok {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *conn) info() (ConnectionInfo, bool) {
	if !c.opened.Load() {
		return ConnectionInfo{}, false
	}
	c.chMu.Lock()
	n := len(c.channels)
	c.chMu.Unlock()
	return ConnectionInfo{
		Name: c.name, ID: c.id, User: c.user.Name, Vhost: c.vhost.name,
		Peer: c.nc.RemoteAddr().String(), Local: c.nc.LocalAddr().String(),
		ClientProperties: c.clientProps, Channels: n, ChannelMax: c.channelMax,
		FrameMax: c.frameMax, Heartbeat: c.heartbeat(), ConnectedAt: c.connectedAt,
		RecvOct: c.stats.recvOct.Load(), SendOct: c.stats.sendOct.Load(),
		Stats: c.messageStats(),
	}, true
}

// CloseConnection closes the named connection with 320 CONNECTION_FORCED
// and reason; it reports whether the connection existed.
func (s *Server) CloseConnection(name, reason string) bool {
	for _, c := range s.connections() {
		if c.name == name && c.opened.Load() {
			c.forceClose(amqp.Errorf(amqp.ConnectionForced, "%s", reason))
			return true
		}
	}
	return false
}

// ChannelInfo describes one channel.
type ChannelInfo struct {
	Connection     string
	Number         uint16
	User           string
	Vhost          string
	Consumers      int
	Unacked        int
	Prefetch       int
	GlobalPrefetch int
	Confirm        bool
	Transactional  bool
	Stats          MessageStats
}

// ChannelInfos lists every open channel.
func (s *Server) ChannelInfos() []ChannelInfo {
	var out []ChannelInfo
	for _, c := range s.connections() {
		if !c.opened.Load() {
			continue
		}
		for _, ch := range c.channelList() {
			ch.mu.Lock()
			out = append(out, ChannelInfo{
				Connection: c.name, Number: ch.id, User: c.user.Name, Vhost: c.vhost.name,
				Consumers: len(ch.consumers), Unacked: ch.unacked.len(),
				GlobalPrefetch: ch.globalPrefetch, Prefetch: ch.prefetchInfo,
				Confirm: ch.confirmInfo, Transactional: ch.txInfo, Stats: ch.stats.Snapshot(),
			})
			ch.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connection != out[j].Connection {
			return out[i].Connection < out[j].Connection
		}
		return out[i].Number < out[j].Number
	})
	return out
}

// ConsumerInfo describes one consumer.
type ConsumerInfo struct {
	Tag           string
	Queue         string
	Vhost         string
	Connection    string
	Channel       uint16
	AckRequired   bool
	Exclusive     bool
	PrefetchCount int
}

// ConsumerInfos lists every consumer.
func (s *Server) ConsumerInfos() []ConsumerInfo {
	var out []ConsumerInfo
	for _, c := range s.connections() {
		if !c.opened.Load() {
			continue
		}
		for _, ch := range c.channelList() {
			ch.mu.Lock()
			for _, k := range ch.consumers {
				out = append(out, ConsumerInfo{
					Tag: k.tag, Queue: k.q.Name(), Vhost: c.vhost.name, Connection: c.name, Channel: ch.id,
					AckRequired: !k.noAck, Exclusive: k.exclusive, PrefetchCount: k.prefetch,
				})
			}
			ch.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}

// QueueInfo describes one queue.
type QueueInfo struct {
	Vhost                          string
	Name                           string
	Durable, AutoDelete, Exclusive bool
	Owner                          string // the exclusive owner's connection name
	Arguments                      amqp.Table
	Ready, Unacked, Consumers      int
	ReadyBytes                     int64
	PagedOut                       int    // ready messages out of memory, in the store
	Policy                         string // the policy applied, "" for none
	Node                           string // the queue's home node in a cluster ("" standalone)
}

// ExchangeInfo describes one exchange.
type ExchangeInfo struct {
	Vhost                         string
	Name                          string
	Type                          string
	Durable, AutoDelete, Internal bool
	Arguments                     amqp.Table
}

// ExchangeInfos lists a vhost's exchanges sorted by name.
func (v *Vhost) ExchangeInfos() []ExchangeInfo {
	var out []ExchangeInfo
	for _, e := range v.Exchanges() {
		out = append(out, ExchangeInfo{
			Vhost: v.name, Name: e.Name, Type: e.Kind.String(), Durable: e.Durable,
			AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: e.Args,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// BindingInfo describes one binding, including the default exchange's
// implicit binding of every queue.
type BindingInfo struct {
	Vhost           string
	Source          string
	Destination     string
	DestinationType string // "queue" or "exchange"
	RoutingKey      string
	Arguments       amqp.Table
}

// BindingInfos lists a vhost's bindings: the implicit default-exchange
// bindings first, then every explicit one.
func (v *Vhost) BindingInfos() []BindingInfo {
	var out []BindingInfo
	for name := range v.Queues() {
		out = append(out, BindingInfo{Vhost: v.name, Destination: name, DestinationType: "queue", RoutingKey: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	names := make([]string, 0)
	ex := v.Exchanges()
	for n := range ex {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, b := range ex[n].Bindings() {
			out = append(out, bindingInfo(v.name, b))
		}
	}
	return out
}

func bindingInfo(vhost string, b exchange.Binding) BindingInfo {
	dt := "queue"
	if b.Destination.IsExchange {
		dt = "exchange"
	}
	return BindingInfo{Vhost: vhost, Source: b.Source, Destination: b.Destination.Name, DestinationType: dt, RoutingKey: b.Key, Arguments: b.Args}
}
