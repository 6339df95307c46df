package broker

import (
	"regexp"
	"sort"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/queue"
)

// Policy is a RabbitMQ-style policy: settings applied to the queues and/or
// exchanges of a vhost whose names match Pattern. Of the policies that
// match an object, the one with the highest Priority applies; an object's
// own x-arguments win over the policy's keys, except that of a queue's
// and a policy's max-length, max-length-bytes, message-ttl and expires the
// lower applies.
type Policy = meta.Policy

// activePolicy is a policy in force in a vhost, with its pattern compiled.
type activePolicy struct {
	*Policy
	re *regexp.Regexp
}

// appliesTo reports whether the policy covers an object of kind ("queues"
// or "exchanges") with this name.
func (p activePolicy) appliesTo(kind, name string) bool {
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
		out[i] = *p.Policy
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
			return p.Policy
		}
	}
	return nil
}

// setPolicy puts (or with del, removes) a policy in the vhost's list,
// kept sorted by descending priority (then name, for a stable choice among
// equals). The log's applier calls it, one change at a time.
func (v *Vhost) setPolicy(p *Policy, del bool) {
	var ps []activePolicy
	if cur := v.policies.Load(); cur != nil {
		for _, o := range *cur {
			if o.Name != p.Name {
				ps = append(ps, o)
			}
		}
	}
	if !del {
		re, err := regexp.Compile(p.Pattern)
		if err != nil { // checked when proposed
			v.srv.log.Error("policy pattern no longer compiles", "policy", p.Name, "vhost", v.name, "err", err)
			return
		}
		ps = append(ps, activePolicy{Policy: p, re: re})
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Priority != ps[j].Priority {
			return ps[i].Priority > ps[j].Priority
		}
		return ps[i].Name < ps[j].Name
	})
	v.policies.Store(&ps)
}

// PutPolicy creates or replaces a policy; it applies to the vhost's
// queues and exchanges at once.
func (v *Vhost) PutPolicy(p Policy) error {
	p.Vhost = v.name
	return v.srv.propose(meta.PutPolicy{Policy: p})
}

// DeletePolicy removes a policy and its effect; it reports whether it existed.
func (v *Vhost) DeletePolicy(name string) (bool, error) {
	return found(v.srv.propose(meta.DeletePolicy{Vhost: v.name, Name: name}))
}

// found turns a proposal's 404 into false: a delete of something missing.
func found(err error) (bool, error) {
	if e, ok := err.(*amqp.Error); ok && e.Code == amqp.NotFound {
		return false, nil
	}
	return err == nil, err
}

// applyPolicies gives every queue its effective configuration.
func (v *Vhost) applyPolicies() {
	for _, q := range v.localQueues() {
		cfg := q.queue.Config()
		eff, policy := v.effectiveQueueConfig(cfg)
		q.policy.Store(&policy)
		q.queue.SetEffective(eff)
	}
}

// lowerWins are the queue arguments for which, when a queue has both the
// argument and a policy that sets it, the lower of the two applies, as
// in RabbitMQ; for the other keys the argument wins.
var lowerWins = map[string]bool{"x-message-ttl": true, "x-max-length": true, "x-max-length-bytes": true, "x-expires": true}

// effectiveQueueConfig returns a queue's configuration under the policy
// that applies to it and that policy's name: the queue's x-arguments win
// over the policy's keys, except those of lowerWins, where the lower
// value does.
func (v *Vhost) effectiveQueueConfig(declared queue.Config) (queue.Config, string) {
	base, err := queue.ParseArguments(v.name, declared.Name, declared.Args)
	if err != nil { // validated when declared; keep what it has
		return declared, ""
	}
	p := v.effectivePolicy("queues", declared.Name)
	if p == nil {
		return base, ""
	}
	merged := p.QueueArgs()
	for k, val := range declared.Args {
		if pv, ok := merged[k]; ok && lowerWins[k] && lower(pv, val) {
			continue
		}
		merged[k] = val
	}
	eff, err := queue.ParseArguments(v.name, declared.Name, merged)
	if err != nil {
		v.srv.log.Warn("policy not applied", "policy", p.Name, "queue", declared.Name, "vhost", v.name, "err", err)
		return base, ""
	}
	return eff, p.Name
}

// lower reports whether a and b are integers and a < b.
func lower(a, b any) bool {
	x, okA := amqp.IntValue(a)
	y, okB := amqp.IntValue(b)
	return okA && okB && x < y
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

// policyName returns the name of the policy applied to the queue, or "".
func (q *localQueue) policyName() string {
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
