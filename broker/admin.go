package broker

import (
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
)

// Administration of users, permissions and vhosts: each is one operation
// of the metadata log.

// PutUser creates or replaces a user.
func (s *Server) PutUser(u User) error {
	return s.propose(meta.PutUser{User: u})
}

// DeleteUser removes a user and its permissions, closing its connections;
// it reports whether the user existed.
func (s *Server) DeleteUser(name string) (bool, error) {
	return found(s.propose(meta.DeleteUser{Name: name}))
}

// SetPermission grants a user access to a vhost.
func (s *Server) SetPermission(p Permission) error {
	return s.propose(meta.SetPermission{Permission: p})
}

// ClearPermission removes a user's access to a vhost; it reports whether
// there was one.
func (s *Server) ClearPermission(user, vhost string) (bool, error) {
	return found(s.propose(meta.ClearPermission{User: user, Vhost: vhost}))
}

// AddVhost creates a vhost (idempotent).
func (s *Server) AddVhost(name string) (*Vhost, error) {
	if err := s.propose(meta.AddVhost{Name: name}); err != nil {
		return nil, err
	}
	if v := s.Vhost(name); v != nil {
		return v, nil
	}
	return nil, amqp.Errorf(amqp.NotFound, "no vhost '%s'", name) // deleted again meanwhile
}

// AddVhostFor creates a vhost and, if it is new, gives user full
// permissions on it, as RabbitMQ's management API does for the user who
// creates a vhost; both in one operation. It reports whether the vhost
// existed.
func (s *Server) AddVhostFor(name, user string) (existed bool, err error) {
	existed = s.Vhost(name) != nil
	if existed {
		return true, nil
	}
	ops := []meta.Op{meta.AddVhost{Name: name}}
	if user != "" {
		ops = append(ops, meta.SetPermission{Permission: Permission{User: user, Vhost: name, Configure: ".*", Write: ".*", Read: ".*"}})
	}
	return false, s.propose(meta.Batch{Ops: ops})
}

// DeleteVhost deletes a vhost: its connections are closed and its
// exchanges, queues, bindings, policies and permissions removed, as one
// operation. It reports whether the vhost existed.
func (s *Server) DeleteVhost(name string) (bool, error) {
	return found(s.propose(meta.DeleteVhost{Name: name}))
}
