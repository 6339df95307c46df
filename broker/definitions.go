package broker

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
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
	field := func(v string) string {
		if vhost != "" {
			return ""
		}
		return v
	}
	var missing bool
	s.meta.View(func(st *meta.State) {
		if vhost != "" && st.Vhost(vhost) == nil {
			missing = true
			return
		}
		st.Each(func(r meta.Record) {
			if !st.Durable(r) {
				return
			}
			switch r := r.(type) {
			case *meta.Vhost:
				if vhost == "" {
					d.Vhosts = append(d.Vhosts, VhostDef{Name: r.Name, Limits: map[string]any{}, Metadata: map[string]any{"description": "", "tags": []string{}}})
				}
			case *meta.User:
				if vhost == "" {
					d.Users = append(d.Users, UserDef{Name: r.Name, PasswordHash: r.PasswordHash, HashingAlgorithm: hashingAlgorithm, Tags: Tags(nonNil(r.Tags)), Limits: map[string]any{}})
				}
			case *meta.Permission:
				if vhost == "" {
					d.Permissions = append(d.Permissions, *r)
				}
			case *meta.Policy:
				if vhost == "" || r.Vhost == vhost {
					d.Policies = append(d.Policies, PolicyDef{Vhost: field(r.Vhost), Name: r.Name, Pattern: r.Pattern, ApplyTo: r.ApplyTo, Definition: r.Definition, Priority: r.Priority})
				}
			case *meta.Exchange:
				if vhost == "" || r.Vhost == vhost {
					d.Exchanges = append(d.Exchanges, ExchangeDef{Name: r.Name, Vhost: field(r.Vhost), Type: r.Type, Durable: true,
						AutoDelete: r.AutoDelete, Internal: r.Internal, Arguments: amqp.TableToJSON(r.Args)})
				}
			case *meta.Queue:
				if vhost == "" || r.Vhost == vhost {
					d.Queues = append(d.Queues, QueueDef{Name: r.Name, Vhost: field(r.Vhost), Type: "classic", Durable: true, AutoDelete: r.AutoDelete, Arguments: amqp.TableToJSON(r.Args)})
				}
			case *meta.Binding:
				if vhost == "" || r.Vhost == vhost {
					dt := "queue"
					if r.Destination.IsExchange {
						dt = "exchange"
					}
					d.Bindings = append(d.Bindings, BindingDef{Source: r.Source, Vhost: field(r.Vhost), Destination: r.Destination.Name,
						DestinationType: dt, RoutingKey: r.Key, Arguments: amqp.TableToJSON(r.Args)})
				}
			}
		})
	})
	if missing {
		return d, amqp.Errorf(amqp.NotFound, "no vhost '%s'", vhost)
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
	var ops []meta.Op
	if vhost != "" {
		if s.Vhost(vhost) == nil {
			return amqp.Errorf(amqp.NotFound, "no vhost '%s'", vhost)
		}
	} else {
		for _, v := range d.Vhosts {
			ops = append(ops, meta.AddVhost{Name: v.Name})
		}
		for _, u := range d.Users {
			if u.HashingAlgorithm != "" && u.HashingAlgorithm != hashingAlgorithm {
				return fmt.Errorf("user %q: unsupported hashing_algorithm %q (Warren reads %s)", u.Name, u.HashingAlgorithm, hashingAlgorithm)
			}
			ops = append(ops, meta.PutUser{User: User{Name: u.Name, PasswordHash: u.PasswordHash, Tags: u.Tags}})
		}
		for _, p := range d.Permissions {
			ops = append(ops, meta.SetPermission{Permission: p})
		}
	}
	for _, p := range d.Policies {
		ops = append(ops, meta.PutPolicy{Policy: Policy{Vhost: in(p.Vhost), Name: p.Name, Pattern: p.Pattern, ApplyTo: p.ApplyTo, Priority: p.Priority, Definition: p.Definition}})
	}
	for _, e := range d.Exchanges {
		if meta.IsPredeclared(e.Name) {
			continue
		}
		ops = append(ops, meta.DeclareExchange{Exchange: meta.Exchange{Vhost: in(e.Vhost), Name: e.Name, Type: e.Type, Durable: e.Durable,
			AutoDelete: e.AutoDelete, Internal: e.Internal, Args: tableOrNil(e.Arguments)}})
	}
	for _, q := range d.Queues {
		if q.Type != "" && q.Type != "classic" {
			return fmt.Errorf("queue %q in vhost %q is a %s queue: Warren has only classic queues", q.Name, in(q.Vhost), q.Type)
		}
		// The reserved amq. prefix is an AMQP rule: RabbitMQ imports the
		// amq.gen-… queues of its own exports.
		args := tableOrNil(q.Arguments)
		ops = append(ops, meta.DeclareQueue{Queue: meta.Queue{Vhost: in(q.Vhost), Name: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Args: args,
			Node: s.placeQueue(nil, q.Name, args)}, ServerNamed: true})
	}
	for _, b := range d.Bindings {
		ops = append(ops, meta.Bind{Binding: meta.Binding{Vhost: in(b.Vhost), Binding: exchange.Binding{Source: b.Source,
			Destination: exchange.Destination{Name: b.Destination, IsExchange: b.DestinationType == "exchange"},
			Key:         b.RoutingKey, Args: tableOrNil(b.Arguments)}}})
	}
	return s.propose(meta.Batch{Ops: ops})
}

func tableOrNil(m map[string]any) amqp.Table {
	if len(m) == 0 {
		return nil
	}
	return amqp.TableFromJSON(m)
}
