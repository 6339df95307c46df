package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/queue"
)

// Policy is a RabbitMQ-style policy: settings applied to the queues and/or
// exchanges of a vhost whose names match Pattern. Of the policies that
// match an object, the one with the highest Priority applies; an object's
// own x-arguments win over the policy's keys.
type Policy struct {
	Vhost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"` // "queues", "exchanges" or "all"
	Priority   int            `json:"priority"`
	Definition map[string]any `json:"definition"`

	re *regexp.Regexp
}

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

// validate checks a policy as RabbitMQ does and compiles its pattern.
func (p *Policy) validate(vhost string) error {
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
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		return fmt.Errorf("pattern %q is not a valid regular expression: %w", p.Pattern, err)
	}
	p.re = re
	if len(p.Definition) == 0 {
		return errors.New("policy definition must not be empty")
	}
	var unknown []string
	for k, v := range p.Definition {
		switch {
		case k == "alternate-exchange":
			if _, ok := v.(string); !ok {
				return fmt.Errorf("alternate-exchange must be a string, got %v", v)
			}
		case queuePolicyArgs[k] != "", slices.Contains(ignoredPolicyKeys, k):
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s are not recognised policy settings", strings.Join(unknown, ", "))
	}
	if _, err := queue.ParseArguments(vhost, "policy "+p.Name, p.queueArgs()); err != nil {
		return fmt.Errorf("invalid policy definition: %w", err)
	}
	p.Vhost = vhost
	return nil
}

// queueArgs returns the policy's queue settings as x-arguments.
func (p *Policy) queueArgs() amqp.Table {
	t := amqp.Table{}
	for k, v := range p.Definition {
		if arg := queuePolicyArgs[k]; arg != "" {
			t[arg] = amqp.TableFromJSON(map[string]any{"v": v})["v"]
		}
	}
	return t
}

// appliesTo reports whether the policy covers an object of kind ("queues"
// or "exchanges") with this name.
func (p *Policy) appliesTo(kind, name string) bool {
	return (p.ApplyTo == "all" || p.ApplyTo == kind) && p.re.MatchString(name)
}

// Policies returns the vhost's policies by descending priority.
func (v *Vhost) Policies() []Policy {
	ps := v.policies.Load()
	if ps == nil {
		return nil
	}
	out := make([]Policy, len(*ps))
	for i, p := range *ps {
		out[i] = *p
	}
	return out
}

// effectivePolicy returns the policy that applies to an object, or nil.
func (v *Vhost) effectivePolicy(kind, name string) *Policy {
	ps := v.policies.Load()
	if ps == nil {
		return nil
	}
	for _, p := range *ps { // sorted by descending priority
		if p.appliesTo(kind, name) {
			return p
		}
	}
	return nil
}

// setPolicies publishes a new policy list, sorted by descending priority
// (then name, for a stable choice among equals).
func (v *Vhost) setPolicies(ps []*Policy) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Priority != ps[j].Priority {
			return ps[i].Priority > ps[j].Priority
		}
		return ps[i].Name < ps[j].Name
	})
	v.policies.Store(&ps)
}

// PutPolicy creates or replaces a policy, persists it and applies it to
// the vhost's queues and exchanges at once.
func (v *Vhost) PutPolicy(p Policy) error {
	if err := p.validate(v.name); err != nil {
		return amqp.Errorf(amqp.PreconditionFailed, "Validation failed: %v", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.srv.putRecord(kindPolicy, metaKey(v.name, p.Name), p); err != nil {
		return err
	}
	var ps []*Policy
	if cur := v.policies.Load(); cur != nil {
		for _, o := range *cur {
			if o.Name != p.Name {
				ps = append(ps, o)
			}
		}
	}
	v.setPolicies(append(ps, &p))
	v.applyPoliciesLocked()
	return nil
}

// DeletePolicy removes a policy and its effect; it reports whether it existed.
func (v *Vhost) DeletePolicy(name string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	cur := v.policies.Load()
	if cur == nil {
		return false
	}
	var ps []*Policy
	found := false
	for _, o := range *cur {
		if o.Name == name {
			found = true
			continue
		}
		ps = append(ps, o)
	}
	if !found {
		return false
	}
	v.srv.deleteRecord(kindPolicy, metaKey(v.name, name))
	v.setPolicies(ps)
	v.applyPoliciesLocked()
	return true
}

// applyPoliciesLocked gives every queue its effective configuration.
func (v *Vhost) applyPoliciesLocked() {
	for _, q := range v.Queues() {
		cfg := q.Config()
		eff, policy := v.effectiveQueueConfig(cfg)
		q.policy.Store(&policy)
		q.SetEffective(eff)
	}
}

// effectiveQueueConfig returns a queue's configuration under the policy
// that applies to it (its x-arguments win) and that policy's name.
func (v *Vhost) effectiveQueueConfig(declared queue.Config) (queue.Config, string) {
	base, err := queue.ParseArguments(v.name, declared.Name, declared.Args)
	if err != nil { // validated when declared; keep what it has
		return declared, ""
	}
	p := v.effectivePolicy("queues", declared.Name)
	if p == nil {
		return base, ""
	}
	merged := p.queueArgs()
	for k, val := range declared.Args {
		merged[k] = val
	}
	eff, err := queue.ParseArguments(v.name, declared.Name, merged)
	if err != nil {
		v.srv.log.Warn("policy not applied", "policy", p.Name, "queue", declared.Name, "vhost", v.name, "err", err)
		return base, ""
	}
	return eff, p.Name
}

// withPolicy returns the configuration a newly declared or restored queue
// starts with, and the name of the policy behind it.
func (v *Vhost) withPolicy(cfg queue.Config) (queue.Config, string) {
	eff, name := v.effectiveQueueConfig(cfg)
	eff.Name, eff.Durable, eff.Exclusive, eff.AutoDelete, eff.Args = cfg.Name, cfg.Durable, cfg.Exclusive, cfg.AutoDelete, cfg.Args
	return eff, name
}

// policyAlternateExchange returns the alternate-exchange a policy gives
// the exchange, or "".
func (v *Vhost) policyAlternateExchange(name string) string {
	p := v.effectivePolicy("exchanges", name)
	if p == nil {
		return ""
	}
	ae, _ := p.Definition["alternate-exchange"].(string)
	return ae
}

// PolicyName returns the name of the policy applied to the queue, or "".
func (q *Queue) PolicyName() string {
	if p := q.policy.Load(); p != nil {
		return *p
	}
	return ""
}

// ExchangePolicy returns the name of the policy that applies to the
// named exchange, or "".
func (v *Vhost) ExchangePolicy(name string) string {
	if p := v.effectivePolicy("exchanges", name); p != nil {
		return p.Name
	}
	return ""
}

// PolicyDefinition returns the definition of the vhost's named policy.
func (v *Vhost) PolicyDefinition(name string) map[string]any {
	for _, p := range v.Policies() {
		if p.Name == name {
			return p.Definition
		}
	}
	return nil
}

// restorePolicies loads the persisted policies of every vhost.
func (s *Server) restorePolicies() error {
	byVhost := map[string][]*Policy{}
	err := s.store.ListMeta(kindPolicy, func(_ string, b []byte) error {
		var p Policy
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("decode policy: %w", err)
		}
		if err := p.validate(p.Vhost); err != nil {
			return fmt.Errorf("policy %q in vhost %q: %w", p.Name, p.Vhost, err)
		}
		byVhost[p.Vhost] = append(byVhost[p.Vhost], &p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore policies: %w", err)
	}
	for name, ps := range byVhost {
		if v := s.vhosts[name]; v != nil {
			v.setPolicies(ps)
		}
	}
	return nil
}
