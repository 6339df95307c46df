package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/broker/meta"
)

// User is an account that may log in.
type User = meta.User

// Permission is a user's access to one vhost: three regular expressions
// over resource names, as in RabbitMQ.
type Permission = meta.Permission

// grant is a permission in force, with its regular expressions compiled.
type grant struct {
	Permission
	configure, write, read *regexp.Regexp
}

// HashPassword returns password hashed in RabbitMQ's
// rabbit_password_hashing_sha256 format with a fresh random salt.
func HashPassword(password string) string {
	salt := make([]byte, 4)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no entropy: nothing sensible to do
	}
	return hashWithSalt(salt, password)
}

func hashWithSalt(salt []byte, password string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(append(append([]byte{}, salt...), h.Sum(nil)...))
}

// CheckPassword reports whether password matches a rabbit_password_hashing_sha256 hash.
func CheckPassword(hash, password string) bool {
	raw, err := base64.StdEncoding.DecodeString(hash)
	if err != nil || len(raw) != 4+sha256.Size {
		return false
	}
	want := hashWithSalt(raw[:4], password)
	return subtle.ConstantTimeCompare([]byte(want), []byte(hash)) == 1
}

// Access is a kind of permission check.
type Access uint8

// The three kinds of access RabbitMQ checks.
const (
	AccessConfigure Access = iota
	AccessWrite
	AccessRead
)

func (a Access) String() string {
	return [...]string{"configure", "write", "read"}[a]
}

// allows reports whether the permission grants access to the named resource.
// An empty regex grants nothing, as in RabbitMQ.
func (p *grant) allows(a Access, name string) bool {
	var re *regexp.Regexp
	var src string
	switch a {
	case AccessConfigure:
		re, src = p.configure, p.Configure
	case AccessWrite:
		re, src = p.write, p.Write
	default:
		re, src = p.read, p.Read
	}
	switch {
	case src == "" || re == nil:
		return false
	case src == ".*":
		return true // the common grant-all pattern, without running the regexp
	}
	return re.MatchString(name)
}

// Users is the registry of users and their permissions. Safe for concurrent use.
type Users struct {
	gen   atomic.Uint64 // bumped on every change, so callers can cache answers
	mu    sync.RWMutex
	users map[string]*User
	perms map[string]map[string]*grant // user -> vhost -> permission
}

// NewUsers returns an empty registry.
func NewUsers() *Users {
	return &Users{users: map[string]*User{}, perms: map[string]map[string]*grant{}}
}

// Put adds or replaces a user.
func (u *Users) Put(user User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gen.Add(1)
	c := user
	u.users[user.Name] = &c
}

// Delete removes a user and its permissions; it reports whether it existed.
func (u *Users) Delete(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gen.Add(1)
	_, ok := u.users[name]
	delete(u.users, name)
	delete(u.perms, name)
	return ok
}

// Get returns a copy of the named user.
func (u *Users) Get(name string) (User, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	p, ok := u.users[name]
	if !ok {
		return User{}, false
	}
	return *p, true
}

// List returns every user, sorted by name.
func (u *Users) List() []User {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]User, 0, len(u.users))
	for _, p := range u.users {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len returns the number of users.
func (u *Users) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.users)
}

// Authenticate checks a user name and password.
func (u *Users) Authenticate(name, password string) (User, bool) {
	user, ok := u.Get(name)
	if !ok || !CheckPassword(user.PasswordHash, password) {
		return User{}, false
	}
	return user, true
}

// SetPermission grants a user access to a vhost.
func (u *Users) SetPermission(p Permission) error {
	configure, write, read, err := meta.CompilePermission(p)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gen.Add(1)
	m := u.perms[p.User]
	if m == nil {
		m = map[string]*grant{}
		u.perms[p.User] = m
	}
	m[p.Vhost] = &grant{Permission: p, configure: configure, write: write, read: read}
	return nil
}

// ClearPermission removes a user's access to a vhost; it reports whether it existed.
func (u *Users) ClearPermission(user, vhost string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.perms[user][vhost]; !ok {
		return false
	}
	delete(u.perms[user], vhost)
	u.gen.Add(1)
	return true
}

// ClearVhostPermissions removes every permission on a vhost.
func (u *Users) ClearVhostPermissions(vhost string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gen.Add(1)
	for _, m := range u.perms {
		delete(m, vhost)
	}
}

// Permission returns the user's permission on a vhost.
func (u *Users) Permission(user, vhost string) (Permission, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	p, ok := u.perms[user][vhost]
	if !ok {
		return Permission{}, false
	}
	return p.Permission, true
}

// Permissions returns every permission, sorted by user then vhost.
func (u *Users) Permissions() []Permission {
	u.mu.RLock()
	defer u.mu.RUnlock()
	var out []Permission
	for _, m := range u.perms {
		for _, p := range m {
			out = append(out, p.Permission)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Vhost < out[j].Vhost
	})
	return out
}

// Allowed reports whether user may perform access on the named resource in vhost.
func (u *Users) Allowed(user, vhost string, a Access, resource string) bool {
	u.mu.RLock()
	p, ok := u.perms[user][vhost]
	u.mu.RUnlock()
	return ok && p.allows(a, resource)
}

// Generation changes whenever users or permissions change.
func (u *Users) Generation() uint64 { return u.gen.Load() }

// HasVhostAccess reports whether user has any permission entry for vhost.
func (u *Users) HasVhostAccess(user, vhost string) bool {
	u.mu.RLock()
	defer u.mu.RUnlock()
	_, ok := u.perms[user][vhost]
	return ok
}
