package mgmtui

import (
	"net/http"
	"runtime"
	"strconv"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
)

// exchangeTypes are the exchange types /api/overview lists.
var exchangeTypes = []map[string]any{
	{"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
	{"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
	{"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
	{"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
}

func (a *API) overview(w http.ResponseWriter, r *http.Request, u *user) {
	vhosts, _ := a.visibleVhosts(r, u)
	var stats broker.MessageStats
	var totals queueTotals
	var queues, exchanges int
	for _, v := range vhosts {
		ms := v.MessageStats()
		stats.Add(&ms)
		for _, q := range v.Queues() {
			totals.add(q.Info())
			queues++
		}
		exchanges += len(v.Exchanges())
	}
	// Connections, channels and consumers are each node's own: this
	// node's, and those of every other node that answers.
	mine := a.localTotals(u)
	listeners, contexts := mine.Listeners, mine.Contexts
	conns, channels, consumers := mine.Connections, mine.Channels, mine.Consumers
	peers := a.peers()
	answers := ask[peerTotals](r.Context(), a, peers, peerRequest{Op: peerOverview, User: u.Name})
	for _, node := range peers {
		if t, ok := answers[node]; ok {
			conns, channels, consumers = conns+t.Connections, channels+t.Channels, consumers+t.Consumers
			listeners, contexts = append(listeners, t.Listeners...), append(contexts, t.Contexts...)
		}
	}
	rates := a.rates.rates(overviewKey)
	if !u.seesAll() {
		rates = nil // rates are sampled for the whole node
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"management_version": Version,
		"rabbitmq_version":   Version,
		"product_name":       "Warren",
		"product_version":    a.srv.Config().Version,
		"rates_mode":         "basic",
		"cluster_name":       a.clusterName(),
		"node":               a.opts.Node,
		"erlang_version":     runtime.Version(),
		"exchange_types":     exchangeTypes,
		"disable_stats":      false,
		"message_stats":      messageStats(&stats, rates),
		"queue_totals":       totals.object(rates),
		"object_totals": map[string]any{
			"connections": conns, "channels": channels, "exchanges": exchanges,
			"queues": queues, "consumers": consumers,
		},
		"listeners":                 listeners,
		"contexts":                  contexts,
		"statistics_db_event_queue": 0,
	})
}

// localTotals is this node's part of the overview for u: its
// connections, channels and consumers that u may see, its listeners and
// its management context.
func (a *API) localTotals(u *user) peerTotals {
	t := peerTotals{Listeners: a.listeners(), Contexts: a.contexts()}
	for _, c := range a.visibleConnections(u) {
		t.Connections++
		t.Channels += c.Channels
	}
	for _, k := range a.srv.ConsumerInfos() {
		if a.canSee(u, k.Vhost) {
			t.Consumers++
		}
	}
	return t
}

// listeners are this node's, as /api/overview lists them.
func (a *API) listeners() []object {
	out := []object{}
	add := func(protocol, addr string) {
		if addr == "" {
			return
		}
		host, _, _ := splitHost(addr)
		out = append(out, object{"node": a.opts.Node, "protocol": protocol, "ip_address": host, "port": port(addr), "socket_opts": map[string]any{}})
	}
	add("amqp", a.opts.AMQPAddr)
	add("http", a.opts.HTTPAddr)
	return out
}

// contexts are this node's web contexts (its management listener).
func (a *API) contexts() []object {
	if a.opts.HTTPAddr == "" {
		return []object{}
	}
	return []object{{
		"node": a.opts.Node, "description": "Warren Management", "path": "/",
		"port": strconv.Itoa(port(a.opts.HTTPAddr)),
	}}
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, u *user) {
	writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "tags": tagList(u.Tags)})
}

func (a *API) extensions(w http.ResponseWriter, _ *http.Request, _ *user) {
	writeJSON(w, http.StatusOK, []any{})
}

func (a *API) healthAlarms(w http.ResponseWriter, _ *http.Request, _ *user) {
	alarms := a.srv.Alarms()
	if len(alarms) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
		return
	}
	list := make([]map[string]any, 0, len(alarms))
	for _, al := range alarms {
		resource := al
		if al == "memory" {
			resource = "memory"
		}
		list = append(list, map[string]any{"node": a.opts.Node, "resource": resource})
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{
		"status": "failed", "reason": "resource alarm(s) in effect in the cluster", "alarms": list,
	})
}

func (a *API) healthVhosts(w http.ResponseWriter, _ *http.Request, _ *user) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

func (a *API) healthPortListener(w http.ResponseWriter, r *http.Request, _ *user) {
	p, err := strconv.Atoi(pathVar(r, "port"))
	if err != nil {
		writeError(w, badRequest("invalid port"))
		return
	}
	ports := []int{}
	for _, l := range a.listeners() {
		ports = append(ports, l["port"].(int))
	}
	for _, lp := range ports {
		if lp == p {
			writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "port": p})
			return
		}
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{
		"status": "failed", "reason": "No active listener", "missing": p, "ports": ports,
	})
}

// aliveness declares the queue aliveness-test in the vhost, publishes a
// message to it and gets it back, as RabbitMQ's aliveness test does.
func (a *API) aliveness(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	const name = "aliveness-test"
	if _, err := v.DeclareQueue(broker.QueueSpec{Name: name, Durable: false}, false); err != nil {
		writeError(w, err)
		return
	}
	if _, err := v.Publish("", name, amqp.Properties{}, []byte("test_message")); err != nil {
		writeError(w, err)
		return
	}
	q := v.Queue(name)
	if q == nil {
		writeError(w, notFound())
		return
	}
	got := broker.GetMessages(q, 1, false)
	if len(got) != 1 || string(got[0].Message.Body) != "test_message" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failed", "reason": "aliveness test message not received"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}
