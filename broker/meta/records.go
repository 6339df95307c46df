package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Kind names a kind of record.
type Kind uint8

// The record kinds, in the order a snapshot lists them (each kind depends
// only on kinds before it).
const (
	KindVhost Kind = iota + 1
	KindUser
	KindPermission
	KindPolicy
	KindExchange
	KindQueue
	KindBinding
)

func (k Kind) String() string {
	switch k {
	case KindVhost:
		return "vhost"
	case KindUser:
		return "user"
	case KindPermission:
		return "permission"
	case KindPolicy:
		return "policy"
	case KindExchange:
		return "exchange"
	case KindQueue:
		return "queue"
	case KindBinding:
		return "binding"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Record is one object of the metadata: *Vhost, *User, *Permission,
// *Policy, *Exchange, *Queue or *Binding.
type Record interface {
	// Kind is the record's kind.
	Kind() Kind
	// ID identifies the record among those of its kind.
	ID() string
}

// Vhost is a virtual host.
type Vhost struct {
	Name string
}

// User is an account that may log in.
type User struct {
	Name string `json:"name"`
	// PasswordHash is in RabbitMQ's rabbit_password_hashing_sha256 format:
	// base64(salt[4] + sha256(salt + password)). Empty: password login refused.
	PasswordHash string   `json:"password_hash"`
	Tags         []string `json:"tags"`
}

// Permission is a user's access to one vhost: three regular expressions
// over resource names, as in RabbitMQ.
type Permission struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// Policy is a RabbitMQ-style policy: settings applied to the queues and/or
// exchanges of a vhost whose names match Pattern. Of the policies that
// match an object, the one with the highest Priority applies.
type Policy struct {
	Vhost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"` // "queues", "exchanges" or "all"
	Priority   int            `json:"priority"`
	Definition map[string]any `json:"definition"`
}

// Exchange is an exchange as exchange.declare defines it.
type Exchange struct {
	Vhost, Name, Type             string
	Durable, AutoDelete, Internal bool
	Args                          amqp.Table
}

// Queue is a shared (not exclusive) queue as queue.declare defines it.
// Exclusive queues belong to one connection and are not metadata.
//
// Node is the queue's home in a cluster: the node that holds its
// messages, chosen by the proposer before the declare enters the log (so
// that every node applies the same choice). The other nodes reach the
// queue through that node. "" is a standalone node's queue (and one
// declared before queues had homes): every node that has it keeps it
// locally. Node is not part of the declaration: a redeclare does not
// compare it and cannot move the queue.
type Queue struct {
	Vhost, Name         string
	Durable, AutoDelete bool
	Args                amqp.Table
	Node                string
}

// Binding is a binding in a vhost.
type Binding struct {
	Vhost string
	exchange.Binding
}

// Kind implements Record.
func (*Vhost) Kind() Kind { return KindVhost }

// Kind implements Record.
func (*User) Kind() Kind { return KindUser }

// Kind implements Record.
func (*Permission) Kind() Kind { return KindPermission }

// Kind implements Record.
func (*Policy) Kind() Kind { return KindPolicy }

// Kind implements Record.
func (*Exchange) Kind() Kind { return KindExchange }

// Kind implements Record.
func (*Queue) Kind() Kind { return KindQueue }

// Kind implements Record.
func (*Binding) Kind() Kind { return KindBinding }

// ID implements Record.
func (v *Vhost) ID() string { return v.Name }

// ID implements Record.
func (u *User) ID() string { return u.Name }

// ID implements Record.
func (p *Permission) ID() string { return pairKey(p.User, p.Vhost) }

// ID implements Record.
func (p *Policy) ID() string { return pairKey(p.Vhost, p.Name) }

// ID implements Record.
func (e *Exchange) ID() string { return pairKey(e.Vhost, e.Name) }

// ID implements Record.
func (q *Queue) ID() string { return pairKey(q.Vhost, q.Name) }

// ID implements Record: vhost, source, destination kind and name, routing
// key and the encoded arguments (which sort their keys, so equal arguments
// give equal keys).
func (b *Binding) ID() string {
	dt := "q"
	if b.Destination.IsExchange {
		dt = "e"
	}
	var args []byte
	if len(b.Args) > 0 {
		args = amqp.AppendTable(nil, b.Args)
	}
	return strings.Join([]string{b.Vhost, b.Source, dt, b.Destination.Name, b.Key, string(args)}, "\x00")
}

func pairKey(a, b string) string { return a + "\x00" + b }

// queuePolicyArgs maps the policy keys that configure queues to the
// x-arguments they stand for.
var queuePolicyArgs = map[string]string{
	"message-ttl":             "x-message-ttl",
	"expires":                 "x-expires",
	"max-length":              "x-max-length",
	"max-length-bytes":        "x-max-length-bytes",
	"overflow":                "x-overflow",
	"dead-letter-exchange":    "x-dead-letter-exchange",
	"dead-letter-routing-key": "x-dead-letter-routing-key",
}

// ignoredPolicyKeys are RabbitMQ policy keys for features Warren does not
// have (mirroring, other queue types, federation); they are accepted so
// that RabbitMQ definitions import, and have no effect.
var ignoredPolicyKeys = []string{
	"ha-mode", "ha-params", "ha-sync-mode", "ha-sync-batch-size", "ha-promote-on-shutdown",
	"ha-promote-on-failure", "queue-master-locator", "queue-mode", "queue-version", "max-age",
	"stream-max-segment-size-bytes", "delivery-limit", "dead-letter-strategy", "initial-cluster-size",
	"max-in-memory-length", "max-in-memory-bytes", "federation-upstream", "federation-upstream-set",
	"consumer-timeout",
}

// Validate checks a policy as RabbitMQ does, defaulting ApplyTo to "all".
func (p *Policy) Validate() error {
	if p.Name == "" {
		return errors.New("policy name must not be empty")
	}
	if p.ApplyTo == "" {
		p.ApplyTo = "all"
	}
	switch p.ApplyTo {
	case "queues", "exchanges", "all":
	default:
		return fmt.Errorf("apply-to %q must be one of queues, exchanges, all", p.ApplyTo)
	}
	if _, err := regexp.Compile(p.Pattern); err != nil {
		return fmt.Errorf("pattern %q is not a valid regular expression: %w", p.Pattern, err)
	}
	if len(p.Definition) == 0 {
		return errors.New("policy definition must not be empty")
	}
	// As RabbitMQ: the values of the keys it knows first, then the keys
	// it does not know.
	var unknown []string
	for _, k := range sortedKeys(p.Definition) {
		switch {
		case policyChecks[k] != nil:
			if err := policyChecks[k](p.Definition[k]); err != nil {
				return err
			}
		case slices.Contains(ignoredPolicyKeys, k):
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s are not recognised policy settings", strings.Join(unknown, ", "))
	}
	return nil
}

// policyChecks validate the values of the policy keys Warren uses, with
// the texts of RabbitMQ's rabbit_policies.
var policyChecks = map[string]func(v any) error{
	"alternate-exchange":      policyString("alternate exchange name"),
	"dead-letter-exchange":    policyString("dead letter exchange name"),
	"dead-letter-routing-key": policyString("dead letter routing key"),
	"message-ttl":             policyInt(0, "message TTL"),
	"expires":                 policyInt(1, "queue expiry"),
	"max-length":              policyInt(0, "maximum length"),
	"max-length-bytes":        policyInt(0, "maximum length in bytes"),
	"queue-leader-locator": func(v any) error {
		if s, ok := v.(string); ok && queue.ValidLeaderLocator(s) {
			return nil
		}
		return fmt.Errorf("%s is not a valid queue leader locator value", policyValueText(v))
	},
	"overflow": func(v any) error {
		switch v {
		case "drop-head", "reject-publish", "reject-publish-dlx":
			return nil
		}
		return fmt.Errorf("%s is not a valid overflow value", policyValueText(v))
	},
}

func policyString(what string) func(any) error {
	return func(v any) error {
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s is not a valid %s", policyValueText(v), what)
		}
		return nil
	}
}

func policyInt(least int64, what string) func(any) error {
	return func(v any) error {
		if n, ok := policyInteger(v); !ok || n < least {
			return fmt.Errorf("%s is not a valid %s", policyValueText(v), what)
		}
		return nil
	}
}

// policyInteger returns a definition value that is an integer: a JSON
// number without a fraction, as encoding/json (float64) or with UseNumber
// (json.Number) decodes it, or a Go integer.
func policyInteger(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<63 {
			return int64(n), true
		}
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	}
	return 0, false
}

// policyValueText is a definition value as RabbitMQ prints it (the Erlang
// term): 5, 1.5, <<"text">>, true.
func policyValueText(v any) string {
	if n, ok := policyInteger(v); ok {
		return strconv.FormatInt(n, 10)
	}
	switch v := v.(type) {
	case string:
		return `<<"` + v + `">>`
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = policyValueText(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			parts = append(parts, policyValueText(k)+" => "+policyValueText(v[k]))
		}
		return "#{" + strings.Join(parts, ",") + "}"
	}
	return fmt.Sprint(v)
}

// QueueArgs returns the policy's queue settings as x-arguments.
func (p *Policy) QueueArgs() amqp.Table {
	t := amqp.Table{}
	for k, v := range p.Definition {
		if arg := queuePolicyArgs[k]; arg != "" {
			t[arg] = amqp.TableFromJSON(map[string]any{"v": v})["v"]
		}
	}
	return t
}

// CompilePermission compiles a permission's three regular expressions.
func CompilePermission(p Permission) (configure, write, read *regexp.Regexp, err error) {
	if configure, err = regexp.Compile(p.Configure); err != nil {
		return nil, nil, nil, fmt.Errorf("configure regex %q: %w", p.Configure, err)
	}
	if write, err = regexp.Compile(p.Write); err != nil {
		return nil, nil, nil, fmt.Errorf("write regex %q: %w", p.Write, err)
	}
	if read, err = regexp.Compile(p.Read); err != nil {
		return nil, nil, nil, fmt.Errorf("read regex %q: %w", p.Read, err)
	}
	return configure, write, read, nil
}
