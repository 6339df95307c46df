package broker

import (
	"fmt"

	"github.com/warrenmq/warren/amqp"
)

// Administration of users, permissions and vhosts, persisted in the store.

// PutUser creates or replaces a user.
func (s *Server) PutUser(u User) error {
	if u.Name == "" {
		return fmt.Errorf("user name must not be empty")
	}
	if err := s.putRecord(kindUser, u.Name, u); err != nil {
		return err
	}
	s.users.Put(u)
	return nil
}

// DeleteUser removes a user and its permissions, closing its connections.
func (s *Server) DeleteUser(name string) (bool, error) {
	if _, ok := s.users.Get(name); !ok {
		return false, nil
	}
	for _, p := range s.users.Permissions() {
		if p.User == name {
			s.deleteRecord(kindPermission, metaKey(p.User, p.Vhost))
		}
	}
	s.deleteRecord(kindUser, name)
	s.users.Delete(name)
	for _, c := range s.Connections() {
		if c.user.Name == name {
			c.forceClose(amqp.Errorf(amqp.ConnectionForced, "user '%s' was deleted", name))
		}
	}
	return true, nil
}

// SetPermission grants a user access to a vhost.
func (s *Server) SetPermission(p Permission) error {
	if _, ok := s.users.Get(p.User); !ok {
		return fmt.Errorf("no user %q", p.User)
	}
	if s.Vhost(p.Vhost) == nil {
		return fmt.Errorf("no vhost %q", p.Vhost)
	}
	if err := p.compile(); err != nil {
		return err
	}
	if err := s.putRecord(kindPermission, metaKey(p.User, p.Vhost), p); err != nil {
		return err
	}
	return s.users.SetPermission(p)
}

// ClearPermission removes a user's access to a vhost.
func (s *Server) ClearPermission(user, vhost string) bool {
	if !s.users.ClearPermission(user, vhost) {
		return false
	}
	s.deleteRecord(kindPermission, metaKey(user, vhost))
	return true
}

// DeleteVhost deletes a vhost: its connections are closed and its
// exchanges, queues, bindings and permissions removed.
func (s *Server) DeleteVhost(name string) (bool, error) {
	s.mu.Lock()
	v := s.vhosts[name]
	delete(s.vhosts, name)
	s.mu.Unlock()
	if v == nil {
		return false, nil
	}
	// A connection marks itself opened after setting its vhost, then
	// checks deleted: either it sees deleted or this loop sees it opened.
	v.deleted.Store(true)
	for _, c := range s.Connections() {
		if c.opened.Load() && c.vhost == v {
			c.forceClose(amqp.Errorf(amqp.ConnectionForced, "vhost '%s' is deleted", name))
		}
	}
	v.mu.Lock()
	for _, q := range v.Queues() {
		v.removeQueueLocked(q)
	}
	for _, e := range v.Exchanges() {
		if e.Durable && e.Name != "" {
			s.unpersistExchange(v, e.Name)
		}
	}
	v.mu.Unlock()
	for _, p := range s.users.Permissions() {
		if p.Vhost == name {
			s.deleteRecord(kindPermission, metaKey(p.User, p.Vhost))
		}
	}
	s.users.ClearVhostPermissions(name)
	for _, p := range v.Policies() {
		s.deleteRecord(kindPolicy, metaKey(name, p.Name))
	}
	s.deleteRecord(kindVhost, name)
	return true, nil
}
