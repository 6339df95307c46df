package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Every metadata change goes through one door: propose hands an op to the
// metadata log, which checks it, makes it durable and applies it here, in
// log order, through applyChanges. Nothing else changes vhosts, users,
// permissions, policies, shared queues, exchanges or bindings. Exclusive
// queues belong to one connection and stay out of the log (exclusive.go).

// propose submits op to the metadata log and waits until it is applied.
func (s *Server) propose(op meta.Op) error {
	return s.meta.Propose(context.Background(), op)
}

// MetaLog returns the metadata log.
func (s *Server) MetaLog() meta.Log { return s.meta }

// MetadataSnapshot returns the whole metadata, transient objects included,
// as one snapshot (meta.Snapshot).
func (s *Server) MetadataSnapshot() []byte {
	var snap []byte
	s.meta.View(func(st *meta.State) { snap = meta.Snapshot(st, false) })
	return snap
}

// InstallMetadataSnapshot replaces the metadata with a snapshot's: the
// broker creates and removes its vhosts, users, queues, exchanges and
// bindings to match, and the store keeps the snapshot's durable part.
func (s *Server) InstallMetadataSnapshot(ctx context.Context, snap []byte) error {
	inst, ok := s.meta.(interface {
		InstallSnapshot(context.Context, []byte) error
	})
	if !ok {
		return errors.New("this node's metadata log does not install snapshots")
	}
	return inst.InstallSnapshot(ctx, snap)
}

// metaApplier is the Server as the log's meta.Applier.
type metaApplier struct{ s *Server }

// Apply implements meta.Applier.
func (a metaApplier) Apply(cs []meta.Change) { a.s.applyChanges(cs) }

// applyChanges makes the running broker follow the metadata: each change
// creates or removes a vhost, user, permission, policy, exchange, queue or
// binding. It runs on the log's turn, one op at a time, and holds no lock
// across a store write.
func (s *Server) applyChanges(cs []meta.Change) {
	policies := map[*Vhost]bool{}
	for _, c := range cs {
		switch r := c.Record.(type) {
		case *meta.Vhost:
			if c.Delete {
				s.dropVhost(r.Name)
			} else {
				s.mu.Lock()
				if s.vhosts[r.Name] == nil {
					s.vhosts[r.Name] = newVhost(s, r.Name)
				}
				s.mu.Unlock()
			}
		case *meta.User:
			if c.Delete {
				s.users.Delete(r.Name)
				s.closeUserConnections(r.Name)
			} else {
				s.users.Put(*r)
			}
		case *meta.Permission:
			if c.Delete {
				s.users.ClearPermission(r.User, r.Vhost)
			} else if err := s.users.SetPermission(*r); err != nil {
				s.log.Error("permission not applied", "user", r.User, "vhost", r.Vhost, "err", err)
			}
		case *meta.Policy:
			if v := s.Vhost(r.Vhost); v != nil {
				v.setPolicy(r, c.Delete)
				policies[v] = true
			}
		case *meta.Exchange:
			if v := s.Vhost(r.Vhost); v != nil {
				if c.Delete {
					v.setExchange(r.Name, nil)
				} else {
					kind, _ := exchange.ParseKind(r.Type) // checked
					v.setExchange(r.Name, exchange.New(r.Name, kind, r.Durable, r.AutoDelete, r.Internal, r.Args))
				}
			}
		case *meta.Queue:
			if v := s.Vhost(r.Vhost); v != nil {
				if c.Delete {
					v.dropQueue(r.Name)
				} else {
					v.createQueue(r)
				}
			}
		case *meta.Binding:
			if v := s.Vhost(r.Vhost); v != nil {
				if src := v.Exchange(r.Source); src != nil {
					if c.Delete {
						src.Unbind(r.Binding)
					} else {
						src.Bind(r.Binding)
					}
				}
			}
		}
	}
	for v := range policies {
		v.applyPolicies()
	}
}

// dropVhost removes a deleted vhost: its connections are closed. Its
// queues, exchanges, policies and permissions went in the changes before.
func (s *Server) dropVhost(name string) {
	s.mu.Lock()
	v := s.vhosts[name]
	delete(s.vhosts, name)
	s.mu.Unlock()
	if v == nil {
		return
	}
	// A connection marks itself opened after setting its vhost, then
	// checks deleted: either it sees deleted or this loop sees it opened.
	v.deleted.Store(true)
	for _, c := range s.connections() {
		if c.opened.Load() && c.vhost == v {
			c.forceClose(amqp.Errorf(amqp.ConnectionForced, "vhost '%s' is deleted", name))
		}
	}
	for _, q := range v.Queues() { // exclusive queues of connections that are closing
		v.dropQueue(q.Name())
	}
}

// closeUserConnections closes the connections of a deleted user. A
// connection marks itself opened after authenticating, then checks that
// its user exists: either it sees the deletion or this loop sees it opened.
func (s *Server) closeUserConnections(name string) {
	for _, c := range s.connections() {
		if c.opened.Load() && c.user.Name == name {
			c.forceClose(amqp.Errorf(amqp.ConnectionForced, "user '%s' was deleted", name))
		}
	}
}

// createQueue starts the queue of a metadata record. At start-up (and,
// with a replicated log, whenever it appears) it gets the messages the
// store holds for it. A queue whose home is another node is a handle on
// it (Config.Remote).
func (v *Vhost) createQueue(r *meta.Queue) {
	if h := v.srv.remoteHandle(r); h != nil {
		v.mu.Lock()
		defer v.mu.Unlock()
		if cur := v.queue(r.Name); cur != nil {
			// An exclusive queue holds the name (the shared queue appears
			// when it goes), or the handle is there already.
			return
		}
		v.setQueue(r.Name, h)
		return
	}
	cfg, err := queue.ParseArguments(r.Vhost, r.Name, r.Args)
	if err != nil { // checked when declared
		v.srv.log.Error("queue arguments no longer valid", "vhost", r.Vhost, "queue", r.Name, "err", err)
		cfg = queue.DefaultConfig(r.Name)
	}
	cfg.Name, cfg.Durable, cfg.AutoDelete, cfg.Args = r.Name, r.Durable, r.AutoDelete, r.Args
	q := v.newQueue(cfg)
	// With a replicated log a queue may become known after start (the
	// cluster tells this node later): it takes its stored messages then.
	load := v.srv.restoring || (v.srv.cfg.MetaLog != nil && v.localQueue(r.Name) == nil)
	if load && q.durable {
		n, err := v.srv.restoreMessages(q)
		if err != nil {
			v.srv.log.Error("restoring a queue's messages failed", "vhost", r.Vhost, "queue", r.Name, "err", err)
		} else if v.srv.restoring || n > 0 {
			v.srv.log.Info("queue recovered", "vhost", r.Vhost, "queue", r.Name, "messages", n)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur := v.localQueue(r.Name); cur != nil {
		if cur.owner != nil {
			// An exclusive queue took the name between the check and the
			// apply; the shared queue appears when it goes (dropExclusive).
			v.srv.log.Warn("shared queue declared while an exclusive queue holds its name", "vhost", r.Vhost, "queue", r.Name)
		}
		q.queue.Delete() // new and unreachable (or the queue is there already: dropExclusive raced the applier)
		return
	}
	v.setQueue(r.Name, q)
}

// dropQueue removes a deleted queue: its consumers are cancelled and its
// stored messages deleted (by its home node).
func (v *Vhost) dropQueue(name string) {
	v.mu.Lock()
	q := v.queue(name)
	if q == nil || ownerOf(q) != nil {
		v.mu.Unlock()
		return
	}
	v.setQueue(name, nil)
	v.mu.Unlock()
	q.Delete()
}

// restoreMetadata opens the metadata log over the store (or the one
// Config.MetaLog opens), which rebuilds the vhosts, users, policies,
// exchanges, queues and bindings it holds, and creates the defaults
// (vhost, user, permission) in a new data dir or a new cluster.
func (s *Server) restoreMetadata() error {
	if err := s.checkLegacyMetadata(); err != nil {
		return err
	}
	s.restoring = true
	var err error
	if s.cfg.MetaLog != nil {
		s.meta, err = s.cfg.MetaLog(s.store, metaApplier{s})
	} else {
		s.meta, err = meta.OpenLocal(s.store, metaApplier{s}, 0)
	}
	s.restoring = false
	if err != nil {
		return fmt.Errorf("open the metadata log: %w", err)
	}
	if s.cfg.MetaLog == nil {
		// A replicated log may not hold every queue yet: their messages stay.
		if err := s.dropOrphanMessages(); err != nil {
			return err
		}
	}
	if f, ok := s.meta.(interface{ Fresh() bool }); !ok || !f.Fresh() {
		return nil
	}
	cfg := s.cfg
	ops := []meta.Op{meta.AddVhost{Name: cfg.DefaultVhost}}
	if cfg.DefaultUser != "" {
		ops = append(ops,
			meta.PutUser{User: User{Name: cfg.DefaultUser, PasswordHash: HashPassword(cfg.DefaultPass), Tags: []string{"administrator"}}},
			meta.SetPermission{Permission: Permission{User: cfg.DefaultUser, Vhost: cfg.DefaultVhost, Configure: ".*", Write: ".*", Read: ".*"}})
	}
	if err := s.propose(meta.Batch{Ops: ops}); err != nil {
		return fmt.Errorf("create the default vhost and user: %w", err)
	}
	return nil
}

// closeMetaLog closes a log that Config.MetaLog opened, if it has a Close.
func (s *Server) closeMetaLog() error {
	c, ok := s.meta.(interface{ Close() error })
	if !ok {
		return nil
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("close the metadata log: %w", err)
	}
	return nil
}

// lookAgain is called where a read of the metadata found nothing, before
// answering "not found": on a cluster node it waits (for at most
// catchUpTimeout) until this node has applied what the cluster had
// committed, so that an object, user or permission that another node
// confirmed is found here too. It reports whether the caller should look
// again. On a single node it returns false at once: the miss is final.
func (s *Server) lookAgain() bool {
	if s.cfg.MetaLog == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	if err := s.meta.CatchUp(ctx); err != nil {
		s.log.Debug("metadata catch-up failed; answering from this node's view", "err", err)
		return false
	}
	return true
}

// findExchange returns the named exchange, looking again after a miss
// (lookAgain).
func (v *Vhost) findExchange(name string) *exchange.Exchange {
	if e := v.Exchange(name); e != nil || !v.srv.lookAgain() {
		return e
	}
	return v.Exchange(name)
}

// findQueue returns the named queue, looking again after a miss
// (lookAgain).
func (v *Vhost) findQueue(name string) QueueHandle {
	if q := v.queue(name); q != nil || !v.srv.lookAgain() {
		return q
	}
	return v.queue(name)
}

// catchUpTimeout bounds lookAgain.
const catchUpTimeout = 5 * time.Second

// checkLegacyMetadata refuses a data dir whose metadata an earlier Warren
// wrote as separate records.
func (s *Server) checkLegacyMetadata() error {
	found := false
	if err := s.store.ListMeta("vhost", func(string, []byte) error { found = true; return nil }); err != nil {
		return fmt.Errorf("read store: %w", err)
	}
	if found {
		return fmt.Errorf("the data dir %s holds metadata in the format of an earlier Warren (records per object); export its definitions with that version and import them into a new data dir", s.cfg.DataDir)
	}
	return nil
}

// dropOrphanMessages deletes the stored messages of queues that no longer
// exist (a crash between a queue's deletion and that of its messages).
func (s *Server) dropOrphanMessages() error {
	stored, err := s.store.Queues()
	if err != nil {
		return fmt.Errorf("list stored queues: %w", err)
	}
	live := map[string]bool{}
	for _, v := range s.Vhosts() {
		for _, q := range v.localQueues() {
			live[q.storeKey] = true
		}
	}
	for key := range stored {
		if !live[key] {
			if err := s.store.DeleteQueue(key); err != nil {
				return fmt.Errorf("delete the messages of a deleted queue: %w", err)
			}
		}
	}
	return nil
}
