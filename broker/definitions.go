package broker

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
)

// Definitions are the broker's durable topology and users in RabbitMQ's
// definitions format (rabbitmqctl export_definitions, GET /api/definitions),
// so that a file exported from RabbitMQ imports into Warren and back.
type Definitions struct {
	RabbitVersion    string        `json:"rabbit_version,omitempty"`
	RabbitMQVersion  string        `json:"rabbitmq_version,omitempty"`
	ProductName      string        `json:"product_name,omitempty"`
	ProductVersion   string        `json:"product_version,omitempty"`
	Users            []UserDef     `json:"users,omitempty"`
	Vhosts           []VhostDef    `json:"vhosts,omitempty"`
	Permissions      []Permission  `json:"permissions,omitempty"`
	TopicPermissions []any         `json:"topic_permissions,omitempty"`
	Parameters       []any         `json:"parameters,omitempty"`
	GlobalParameters []any         `json:"global_parameters,omitempty"`
	Policies         []PolicyDef   `json:"policies"`
	Queues           []QueueDef    `json:"queues"`
	Exchanges        []ExchangeDef `json:"exchanges"`
	Bindings         []BindingDef  `json:"bindings"`
}

// UserDef is a user in a definitions file.
type UserDef struct {
	Name             string         `json:"name"`
	PasswordHash     string         `json:"password_hash"`
	HashingAlgorithm string         `json:"hashing_algorithm"`
	Tags             Tags           `json:"tags"`
	Limits           map[string]any `json:"limits"`
}

// Tags are user tags; they read from an array or, as RabbitMQ before 3.9
// wrote them, a comma-separated string.
type Tags []string

// UnmarshalJSON accepts both forms.
func (t *Tags) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*t = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("tags must be a string or an array of strings")
	}
	*t = nil
	for _, tag := range strings.Split(s, ",") {
		if tag = strings.TrimSpace(tag); tag != "" {
			*t = append(*t, tag)
		}
	}
	return nil
}

// VhostDef is a vhost in a definitions file.
type VhostDef struct {
	Name     string         `json:"name"`
	Limits   any            `json:"limits,omitempty"` // RabbitMQ writes [] or an object
	Metadata map[string]any `json:"metadata,omitempty"`
}

// PolicyDef is a policy in a definitions file.
type PolicyDef struct {
	Vhost      string         `json:"vhost,omitempty"`
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"`
	Definition map[string]any `json:"definition"`
	Priority   int            `json:"priority"`
}

// QueueDef is a queue in a definitions file.
type QueueDef struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost,omitempty"`
	Type       string         `json:"type,omitempty"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

// ExchangeDef is an exchange in a definitions file.
type ExchangeDef struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost,omitempty"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// BindingDef is a binding in a definitions file.
type BindingDef struct {
	Source          string         `json:"source"`
	Vhost           string         `json:"vhost,omitempty"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

// hashingAlgorithm is the password hashing Warren stores.
const hashingAlgorithm = "rabbit_password_hashing_sha256"

// ExportDefinitions returns the durable definitions: users, vhosts,
// permissions, policies, durable exchanges (not the predeclared ones),
// durable non-exclusive queues and bindings between durable ends. With a
// vhost name only that vhost's policies, queues, exchanges and bindings
// are exported, without vhost fields, as RabbitMQ's per-vhost export.
func (s *Server) ExportDefinitions(vhost string) (Definitions, error) {
	d := Definitions{RabbitVersion: rabbitVersion, RabbitMQVersion: rabbitVersion, ProductName: s.cfg.Product, ProductVersion: s.cfg.Version}
	var vhosts []*Vhost
	if vhost != "" {
		v := s.Vhost(vhost)
		if v == nil {
			return d, amqp.Errorf(amqp.NotFound, "no vhost '%s'", vhost)
		}
		vhosts = []*Vhost{v}
	} else {
		vhosts = s.Vhosts()
		for _, u := range s.users.List() {
			d.Users = append(d.Users, UserDef{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: hashingAlgorithm, Tags: Tags(nonNil(u.Tags)), Limits: map[string]any{}})
		}
		for _, v := range vhosts {
			d.Vhosts = append(d.Vhosts, VhostDef{Name: v.name, Limits: map[string]any{}, Metadata: map[string]any{"description": "", "tags": []string{}}})
		}
		d.Permissions = s.users.Permissions()
	}
	slices.SortFunc(vhosts, func(a, b *Vhost) int { return strings.Compare(a.name, b.name) })
	slices.SortFunc(d.Vhosts, func(a, b VhostDef) int { return strings.Compare(a.Name, b.Name) })
	field := func(v *Vhost) string {
		if vhost != "" {
			return ""
		}
		return v.name
	}
	for _, v := range vhosts {
		for _, p := range v.Policies() {
			d.Policies = append(d.Policies, PolicyDef{Vhost: field(v), Name: p.Name, Pattern: p.Pattern, ApplyTo: p.ApplyTo, Definition: p.Definition, Priority: p.Priority})
		}
		ex := v.Exchanges()
		for _, name := range sortedNames(ex) {
			e := ex[name]
			if e.Durable && name != "" && !isPredeclared(name) {
				d.Exchanges = append(d.Exchanges, ExchangeDef{Name: name, Vhost: field(v), Type: e.Kind.String(), Durable: true,
					AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: amqp.TableToJSON(e.Args)})
			}
		}
		qs := v.Queues()
		for _, name := range sortedNames(qs) {
			q := qs[name]
			if q.isDurable() {
				cfg := q.Config()
				d.Queues = append(d.Queues, QueueDef{Name: name, Vhost: field(v), Type: "classic", Durable: true, AutoDelete: cfg.AutoDelete, Arguments: amqp.TableToJSON(cfg.Args)})
			}
		}
		for _, name := range sortedNames(ex) {
			for _, b := range ex[name].Bindings() {
				if v.bindingDurable(ex[name], b) {
					dt := "queue"
					if b.Destination.IsExchange {
						dt = "exchange"
					}
					d.Bindings = append(d.Bindings, BindingDef{Source: b.Source, Vhost: field(v), Destination: b.Destination.Name,
						DestinationType: dt, RoutingKey: b.Key, Arguments: amqp.TableToJSON(b.Args)})
				}
			}
		}
	}
	d.Policies, d.Queues, d.Exchanges, d.Bindings = nonNil(d.Policies), nonNil(d.Queues), nonNil(d.Exchanges), nonNil(d.Bindings)
	return d, nil
}

// rabbitVersion is the RabbitMQ version Warren's definitions claim, so
// that RabbitMQ imports them.
const rabbitVersion = "3.10.8"

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func isPredeclared(name string) bool {
	for _, p := range predeclared {
		if p.name == name {
			return true
		}
	}
	return false
}

// ImportDefinitions creates what d defines, in dependency order: vhosts,
// users, permissions, policies, exchanges, queues, bindings. Existing
// objects are left as they are when equivalent; an inequivalent one is an
// error naming it. With a vhost name every object goes to that vhost (a
// per-vhost import), and users, vhosts and permissions are ignored.
func (s *Server) ImportDefinitions(d Definitions, vhost string) error {
	in := func(v string) string {
		if vhost != "" {
			return vhost
		}
		if v == "" {
			return s.cfg.DefaultVhost
		}
		return v
	}
	if vhost != "" {
		if s.Vhost(vhost) == nil {
			return amqp.Errorf(amqp.NotFound, "no vhost '%s'", vhost)
		}
	} else {
		for _, v := range d.Vhosts {
			if _, err := s.AddVhost(v.Name); err != nil {
				return fmt.Errorf("vhost %q: %w", v.Name, err)
			}
		}
		for _, u := range d.Users {
			if u.HashingAlgorithm != "" && u.HashingAlgorithm != hashingAlgorithm {
				return fmt.Errorf("user %q: unsupported hashing_algorithm %q (Warren reads %s)", u.Name, u.HashingAlgorithm, hashingAlgorithm)
			}
			if err := s.PutUser(User{Name: u.Name, PasswordHash: u.PasswordHash, Tags: u.Tags}); err != nil {
				return fmt.Errorf("user %q: %w", u.Name, err)
			}
		}
		for _, p := range d.Permissions {
			if err := s.SetPermission(p); err != nil {
				return fmt.Errorf("permission of %q on vhost %q: %w", p.User, p.Vhost, err)
			}
		}
	}
	vh := func(name string) (*Vhost, error) {
		v := s.Vhost(name)
		if v == nil {
			return nil, fmt.Errorf("no vhost %q", name)
		}
		return v, nil
	}
	for _, p := range d.Policies {
		v, err := vh(in(p.Vhost))
		if err != nil {
			return fmt.Errorf("policy %q: %w", p.Name, err)
		}
		if err := v.PutPolicy(Policy{Name: p.Name, Pattern: p.Pattern, ApplyTo: p.ApplyTo, Priority: p.Priority, Definition: p.Definition}); err != nil {
			return fmt.Errorf("policy %q in vhost %q: %w", p.Name, v.name, err)
		}
	}
	for _, e := range d.Exchanges {
		v, err := vh(in(e.Vhost))
		if err != nil {
			return fmt.Errorf("exchange %q: %w", e.Name, err)
		}
		if isPredeclared(e.Name) || e.Name == "" {
			continue
		}
		spec := ExchangeSpec{Name: e.Name, Kind: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: tableOrNil(e.Arguments)}
		if _, err := v.DeclareExchange(spec, false); err != nil {
			return fmt.Errorf("exchange %q in vhost %q: %w", e.Name, v.name, err)
		}
	}
	for _, q := range d.Queues {
		v, err := vh(in(q.Vhost))
		if err != nil {
			return fmt.Errorf("queue %q: %w", q.Name, err)
		}
		if q.Type != "" && q.Type != "classic" {
			return fmt.Errorf("queue %q in vhost %q is a %s queue: Warren has only classic queues", q.Name, v.name, q.Type)
		}
		spec := QueueSpec{Name: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Args: tableOrNil(q.Arguments)}
		if _, err := v.DeclareQueue(spec, false, nil); err != nil {
			return fmt.Errorf("queue %q in vhost %q: %w", q.Name, v.name, err)
		}
	}
	for _, b := range d.Bindings {
		v, err := vh(in(b.Vhost))
		if err != nil {
			return fmt.Errorf("binding from %q: %w", b.Source, err)
		}
		binding := exchange.Binding{Source: b.Source, Destination: exchange.Destination{Name: b.Destination, IsExchange: b.DestinationType == "exchange"},
			Key: b.RoutingKey, Args: tableOrNil(b.Arguments)}
		if err := v.Bind(binding); err != nil {
			return fmt.Errorf("binding from %q to %s %q in vhost %q: %w", b.Source, b.DestinationType, b.Destination, v.name, err)
		}
	}
	return nil
}

func tableOrNil(m map[string]any) amqp.Table {
	if len(m) == 0 {
		return nil
	}
	return amqp.TableFromJSON(m)
}
