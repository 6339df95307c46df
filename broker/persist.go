package broker

import (
	"encoding/json"
	"fmt"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/store"
)

// Store is the durable state the broker needs (store.Badger and
// store.Memory implement it).
type Store interface {
	PutMeta(kind, key string, value []byte) error
	DeleteMeta(kind, key string) error
	ListMeta(kind string, fn func(key string, value []byte) error) error
	AddMessage(id uint64, data []byte, size int, queues []string, done func(error))
	RemoveMessage(queue string, id uint64)
	RemoveMessages(queue string, ids []uint64)
	MarkDelivered(queue string, id uint64, size int)
	DeleteQueue(queue string) error
	Sync(done func(error))
	ScanQueue(queue string, from uint64, fn func(id uint64, data []byte, delivered bool) (bool, error)) error
	ScanQueueIndex(queue string, fn func(id uint64, size int, delivered bool) error) error
	ReadMessages(queue string, keys []store.MessageKey, fn func(i int, data []byte, delivered bool)) error
	PageOut(queue string, id uint64, data []byte)
	RemovePaged(queue string, ids []uint64)
	idStore
	Close() error
}

// Metadata record kinds.
const (
	kindVhost      = "vhost"
	kindUser       = "user"
	kindPermission = "permission"
	kindExchange   = "exchange"
	kindQueue      = "queue"
	kindBinding    = "binding"
	kindState      = "state"
	kindPolicy     = "policy"
)

// exchangeRecord is a durable exchange as stored.
type exchangeRecord struct {
	Vhost      string `json:"vhost"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete"`
	Internal   bool   `json:"internal"`
	Arguments  []byte `json:"arguments"` // an encoded AMQP field table: keeps the value types
}

// queueRecord is a durable queue as stored.
type queueRecord struct {
	Vhost      string `json:"vhost"`
	Name       string `json:"name"`
	AutoDelete bool   `json:"auto_delete"`
	Arguments  []byte `json:"arguments"`
}

func encodeArgs(t amqp.Table) []byte {
	if len(t) == 0 {
		return nil
	}
	return amqp.AppendTable(nil, t)
}

func decodeArgs(b []byte) (amqp.Table, error) {
	if len(b) == 0 {
		return nil, nil
	}
	t, _, err := amqp.DecodeTable(b)
	return t, err
}

func metaKey(vhost, name string) string { return vhost + "\x00" + name }

func (s *Server) putRecord(kind, key string, rec any) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", kind, key, err)
	}
	if err := s.store.PutMeta(kind, key, b); err != nil {
		s.log.Error("store write failed", "kind", kind, "err", err)
		return amqp.Errorf(amqp.InternalError, "could not store %s: %v", kind, err)
	}
	return nil
}

func (s *Server) deleteRecord(kind, key string) {
	if err := s.store.DeleteMeta(kind, key); err != nil {
		s.log.Error("store delete failed", "kind", kind, "err", err)
	}
}

func (s *Server) persistVhost(name string) error {
	return s.putRecord(kindVhost, name, map[string]string{"name": name})
}

func (s *Server) persistExchange(v *Vhost, e *exchange.Exchange) error {
	return s.putRecord(kindExchange, metaKey(v.name, e.Name), exchangeRecord{
		Vhost: v.name, Name: e.Name, Type: e.Kind.String(), AutoDelete: e.AutoDelete,
		Internal: e.Internal, Arguments: encodeArgs(e.Args),
	})
}

func (s *Server) unpersistExchange(v *Vhost, name string) {
	s.deleteRecord(kindExchange, metaKey(v.name, name))
}

func (s *Server) persistQueue(v *Vhost, q *Queue) error {
	cfg := q.Config()
	return s.putRecord(kindQueue, metaKey(v.name, cfg.Name), queueRecord{
		Vhost: v.name, Name: cfg.Name, AutoDelete: cfg.AutoDelete, Arguments: encodeArgs(cfg.Args),
	})
}

func (s *Server) unpersistQueue(v *Vhost, q *Queue) {
	s.deleteRecord(kindQueue, q.storeKey)
	if err := s.store.DeleteQueue(q.storeKey); err != nil {
		s.log.Error("deleting a queue's messages failed", "queue", q.Name(), "err", err)
	}
}

func (s *Server) persistBinding(v *Vhost, b exchange.Binding) error {
	dt := "queue"
	if b.Destination.IsExchange {
		dt = "exchange"
	}
	return s.putRecord(kindBinding, bindingKey(v.name, b), bindingRecord{
		Vhost: v.name, Source: b.Source, Destination: b.Destination.Name, DestinationType: dt,
		RoutingKey: b.Key, Arguments: encodeArgs(b.Args),
	})
}

func (s *Server) unpersistBinding(v *Vhost, b exchange.Binding) {
	s.deleteRecord(kindBinding, bindingKey(v.name, b))
}

// isDurable reports whether q stores persistent messages.
func (q *Queue) isDurable() bool { return q.durable }

// persistMessage hands a persistent message for durable queues to the
// store's group committer; outcome (if any) waits for the commit.
func (s *Server) persistMessage(msg *queue.Message, queues []*Queue, outcome *publishOutcome) {
	if !msg.Persistent() {
		return
	}
	var keys []string
	for _, q := range queues {
		if q.isDurable() {
			keys = append(keys, q.storeKey)
		}
	}
	if len(keys) == 0 {
		return
	}
	data, err := msg.MarshalBinary()
	if err != nil {
		s.log.Error("encode message", "err", err)
		if outcome != nil {
			outcome.nack.Store(true)
		}
		return
	}
	if outcome != nil {
		outcome.pending.Add(1)
	}
	s.store.AddMessage(msg.ID, data, msg.Size(), keys, func(err error) {
		if err != nil {
			s.log.Error("storing a message failed", "id", msg.ID, "err", err)
		}
		if outcome != nil {
			if err != nil {
				outcome.nack.Store(true)
			}
			outcome.done()
		}
	})
}

// unpersistRejected removes a message a durable queue refused.
func (s *Server) unpersistRejected(q *Queue, msg *queue.Message) {
	if msg.Persistent() && q.isDurable() {
		s.store.RemoveMessage(q.storeKey, msg.ID)
	}
}

// markDelivered records a first delivery of a persistent message.
func (s *Server) markDelivered(q *Queue, msg *queue.Message) {
	if msg.Persistent() && q.isDurable() {
		s.store.MarkDelivered(q.storeKey, msg.ID, msg.Size())
	}
}

// removed deletes from the store the persistent messages that left q.
func (s *Server) removed(q *Queue, msgs []*queue.Message) {
	if !q.isDurable() {
		return
	}
	for _, m := range msgs {
		if m.Persistent() {
			s.store.RemoveMessage(q.storeKey, m.ID)
		}
	}
}

// restore loads the durable state at start, creating the defaults (vhost,
// user, permission) on a fresh store.
func (s *Server) restore() error {
	var initialised bool
	if err := s.store.ListMeta(kindState, func(key string, _ []byte) error {
		if key == "initialised" {
			initialised = true
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read store state: %w", err)
	}
	if !initialised {
		if err := s.createDefaults(); err != nil {
			return err
		}
	}
	if err := s.store.ListMeta(kindVhost, func(name string, _ []byte) error {
		s.vhosts[name] = newVhost(s, name)
		return nil
	}); err != nil {
		return fmt.Errorf("restore vhosts: %w", err)
	}
	if err := s.store.ListMeta(kindUser, func(_ string, b []byte) error {
		var u User
		if err := json.Unmarshal(b, &u); err != nil {
			return fmt.Errorf("decode user: %w", err)
		}
		s.users.Put(u)
		return nil
	}); err != nil {
		return fmt.Errorf("restore users: %w", err)
	}
	if err := s.store.ListMeta(kindPermission, func(_ string, b []byte) error {
		var p Permission
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("decode permission: %w", err)
		}
		return s.users.SetPermission(p)
	}); err != nil {
		return fmt.Errorf("restore permissions: %w", err)
	}
	if err := s.restorePolicies(); err != nil {
		return err
	}
	if err := s.restoreExchanges(); err != nil {
		return err
	}
	if err := s.restoreQueues(); err != nil {
		return err
	}
	if err := s.restoreBindings(); err != nil {
		return err
	}
	return nil
}

func (s *Server) createDefaults() error {
	cfg := s.cfg
	if err := s.persistVhost(cfg.DefaultVhost); err != nil {
		return err
	}
	if cfg.DefaultUser != "" {
		u := User{Name: cfg.DefaultUser, PasswordHash: HashPassword(cfg.DefaultPass), Tags: []string{"administrator"}}
		if err := s.putRecord(kindUser, u.Name, u); err != nil {
			return err
		}
		p := Permission{User: u.Name, Vhost: cfg.DefaultVhost, Configure: ".*", Write: ".*", Read: ".*"}
		if err := s.putRecord(kindPermission, metaKey(p.User, p.Vhost), p); err != nil {
			return err
		}
	}
	return s.putRecord(kindState, "initialised", true)
}

func (s *Server) restoreExchanges() error {
	return s.store.ListMeta(kindExchange, func(_ string, b []byte) error {
		var r exchangeRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode exchange: %w", err)
		}
		v := s.vhosts[r.Vhost]
		if v == nil {
			return nil
		}
		kind, ok := exchange.ParseKind(r.Type)
		if !ok {
			return fmt.Errorf("exchange %q in vhost %q has unknown type %q", r.Name, r.Vhost, r.Type)
		}
		args, err := decodeArgs(r.Arguments)
		if err != nil {
			return fmt.Errorf("decode arguments of exchange %q: %w", r.Name, err)
		}
		v.setExchange(r.Name, exchange.New(r.Name, kind, true, r.AutoDelete, r.Internal, args))
		return nil
	})
}

func (s *Server) restoreQueues() error {
	return s.store.ListMeta(kindQueue, func(_ string, b []byte) error {
		var r queueRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode queue: %w", err)
		}
		v := s.vhosts[r.Vhost]
		if v == nil {
			return nil
		}
		args, err := decodeArgs(r.Arguments)
		if err != nil {
			return fmt.Errorf("decode arguments of queue %q: %w", r.Name, err)
		}
		cfg, err := queue.ParseArguments(r.Vhost, r.Name, args)
		if err != nil {
			return fmt.Errorf("queue %q in vhost %q: %w", r.Name, r.Vhost, err)
		}
		cfg.Name, cfg.Durable, cfg.AutoDelete, cfg.Args = r.Name, true, r.AutoDelete, args
		q := v.newQueue(cfg)
		n, err := s.restoreMessages(q)
		if err != nil {
			return fmt.Errorf("restore messages of queue %q in vhost %q: %w", r.Name, r.Vhost, err)
		}
		v.setQueue(r.Name, q)
		s.log.Info("queue recovered", "vhost", r.Vhost, "queue", r.Name, "messages", n)
		return nil
	})
}

// restoreMessages gives q the messages the store holds for it. Without
// priorities only the index is read (ids, sizes): the queue reads messages
// back as they near its head, so a restart with millions of messages is
// quick. A priority queue needs each message's priority, so its messages
// are read in full (and paged out again past the queue's memory bound).
func (s *Server) restoreMessages(q *Queue) (int, error) {
	n := 0
	var err error
	if q.Config().MaxPriority == 0 {
		err = s.store.ScanQueueIndex(q.storeKey, func(id uint64, size int, _ bool) error {
			q.RestorePaged(id, int64(size))
			n++
			return nil
		})
	} else {
		err = s.store.ScanQueue(q.storeKey, 0, func(id uint64, data []byte, delivered bool) (bool, error) {
			msg, err := queue.UnmarshalMessage(data)
			if err != nil {
				return false, fmt.Errorf("decode message %d: %w", id, err)
			}
			msg.ID = id
			q.Restore(msg, delivered)
			n++
			return true, nil
		})
	}
	q.ArmAfterRestore()
	return n, err
}

func (s *Server) restoreBindings() error {
	return s.store.ListMeta(kindBinding, func(_ string, b []byte) error {
		var r bindingRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode binding: %w", err)
		}
		v := s.vhosts[r.Vhost]
		if v == nil {
			return nil
		}
		src := v.Exchange(r.Source)
		if src == nil {
			return nil
		}
		args, err := decodeArgs(r.Arguments)
		if err != nil {
			return fmt.Errorf("decode binding arguments: %w", err)
		}
		src.Bind(exchange.Binding{
			Source:      r.Source,
			Destination: exchange.Destination{Name: r.Destination, IsExchange: r.DestinationType == "exchange"},
			Key:         r.RoutingKey, Args: args,
		})
		return nil
	})
}
