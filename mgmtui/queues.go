package mgmtui

import (
	"encoding/base64"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/warrenmq/warren/broker"
)

func (a *API) queueObject(q broker.QueueHandle) object {
	info := q.Info()
	stats := q.MessageStats()
	rates := a.rates.rates(queueKey(info.Vhost, info.Name))
	totals := queueTotals{ready: info.Ready, unacked: info.Unacked, readyBytes: info.ReadyBytes}
	o := totals.object(rates)
	node := info.Node // the queue's home node in a cluster
	if node == "" {
		node = a.opts.Node
	}
	for k, v := range map[string]any{
		"name": info.Name, "vhost": info.Vhost, "node": node, "type": "classic",
		"durable": info.Durable, "auto_delete": info.AutoDelete, "exclusive": info.Exclusive,
		"arguments": tableToJSON(info.Arguments), "consumers": info.Consumers, "state": "running",
		"message_bytes": info.ReadyBytes, "message_bytes_ready": info.ReadyBytes,
		"messages_paged_out": info.PagedOut, "messages_ram": info.Ready + info.Unacked - info.PagedOut,
		"message_stats": messageStats(&stats, rates, broker.StatPublish, broker.StatDeliver, broker.StatDeliverNoAck,
			broker.StatGet, broker.StatGetNoAck, broker.StatRedeliver, broker.StatAck),
		"policy": nil, "exclusive_consumer_tag": nil, "effective_policy_definition": map[string]any{},
	} {
		o[k] = v
	}
	ms := o["message_stats"].(map[string]any)
	ms["deliver_get"] = deliverGet(&stats)
	ms["deliver_get_details"] = details(rateAt(rates, int(broker.NumStats)))
	if info.Policy != "" {
		o["policy"] = info.Policy
		if v := a.srv.Vhost(info.Vhost); v != nil {
			o["effective_policy_definition"] = v.PolicyDefinition(info.Policy)
		}
	}
	if info.Owner != "" {
		o["owner_pid_details"] = map[string]any{"name": info.Owner}
	}
	return o
}

func (a *API) listQueues(w http.ResponseWriter, r *http.Request, u *user) {
	vhosts, aerr := a.visibleVhosts(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	q, err := parseListQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var queues []broker.QueueHandle
	for _, v := range vhosts {
		all := v.Queues()
		q.total += len(all)
		for _, name := range sortedKeys(all) {
			if q.matches(name) {
				queues = append(queues, all[name])
			}
		}
	}
	if q.paged && (q.sortKey == "" || q.sortKey == "name") {
		// Listed in name order already: render only the page, so that a
		// page costs the same with 10 queues or 100,000.
		if q.sortReverse {
			slices.Reverse(queues)
		}
		writePage(w, q, len(queues), func(start, end int) []object {
			items := make([]object, 0, end-start)
			for _, bq := range queues[start:end] {
				items = append(items, a.queueObject(bq))
			}
			return items
		})
		return
	}
	items := make([]object, 0, len(queues))
	for _, bq := range queues {
		items = append(items, a.queueObject(bq))
	}
	writeQueried(w, q, items)
}

// queueVar returns the request's queue.
func (a *API) queueVar(r *http.Request, u *user) (*broker.Vhost, broker.QueueHandle, *apiError) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		return nil, nil, aerr
	}
	q := v.Queue(pathVar(r, "name"))
	if q == nil {
		return nil, nil, notFound()
	}
	return v, q, nil
}

func (a *API) getQueue(w http.ResponseWriter, r *http.Request, u *user) {
	v, q, aerr := a.queueVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	o := a.queueObject(q)
	consumers := filterObjects(a.consumers(r, u), func(k object) bool {
		kq, _ := k["queue"].(map[string]any)
		return kq != nil && kq["vhost"] == v.Name() && kq["name"] == q.Name()
	})
	if consumers == nil {
		consumers = []object{}
	}
	o["consumer_details"] = consumers
	writeJSON(w, http.StatusOK, o)
}

// putQueue declares a queue: 201 when created, 204 when it existed and is
// equivalent, 400 when it is not.
func (a *API) putQueue(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	name := pathVar(r, "name")
	if aerr := a.requirePermission(u, v.Name(), broker.AccessConfigure, "queue", name); aerr != nil {
		writeError(w, aerr)
		return
	}
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	durable, err := b.boolean("durable", true)
	if err != nil {
		writeError(w, err)
		return
	}
	autoDelete, err := b.boolean("auto_delete", false)
	if err != nil {
		writeError(w, err)
		return
	}
	args, err := b.table("arguments")
	if err != nil {
		writeError(w, err)
		return
	}
	existed := v.Queue(name) != nil
	if _, err := v.DeclareQueue(broker.QueueSpec{Name: name, Durable: durable, AutoDelete: autoDelete, Args: args}, false); err != nil {
		writeError(w, err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (a *API) deleteQueue(w http.ResponseWriter, r *http.Request, u *user) {
	v, q, aerr := a.queueVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.requirePermission(u, v.Name(), broker.AccessConfigure, "queue", q.Name()); aerr != nil {
		writeError(w, aerr)
		return
	}
	qs := r.URL.Query()
	if _, err := v.DeleteQueue(q.Name(), qs.Get("if-unused") == "true", qs.Get("if-empty") == "true"); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) purgeQueue(w http.ResponseWriter, r *http.Request, u *user) {
	v, q, aerr := a.queueVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.requirePermission(u, v.Name(), broker.AccessRead, "queue", q.Name()); aerr != nil {
		writeError(w, aerr)
		return
	}
	q.Purge()
	w.WriteHeader(http.StatusNoContent)
}

// getMessages serves POST /api/queues/{vhost}/{name}/get: count, ackmode
// (ack_requeue_true, ack_requeue_false, reject_requeue_true,
// reject_requeue_false), encoding (auto or base64) and truncate.
func (a *API) getMessages(w http.ResponseWriter, r *http.Request, u *user) {
	v, q, aerr := a.queueVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.requirePermission(u, v.Name(), broker.AccessRead, "queue", q.Name()); aerr != nil {
		writeError(w, aerr)
		return
	}
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	count, err := b.integer("count", 1)
	if err != nil || count < 1 {
		writeError(w, badRequest("count must be a positive integer"))
		return
	}
	var requeue bool
	switch b.str("ackmode") {
	case "ack_requeue_true", "reject_requeue_true":
		requeue = true
	case "ack_requeue_false", "reject_requeue_false":
	default:
		writeError(w, badRequest("ackmode must be one of ack_requeue_true, ack_requeue_false, reject_requeue_true, reject_requeue_false"))
		return
	}
	encoding := b.str("encoding")
	if encoding == "" {
		encoding = "auto"
	}
	if encoding != "auto" && encoding != "base64" {
		writeError(w, badRequest("encoding must be auto or base64"))
		return
	}
	truncate, err := b.integer("truncate", -1)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []object{}
	for _, g := range broker.GetMessages(q, int(min(count, 10000)), requeue) {
		msg := g.Message
		payload := msg.Body
		if truncate >= 0 && int64(len(payload)) > truncate {
			payload = payload[:truncate]
		}
		o := object{
			"payload_bytes": len(msg.Body), "redelivered": g.Redelivered, "exchange": msg.Exchange,
			"routing_key": msg.RoutingKey, "message_count": g.MessageCount,
			"properties": propertiesToJSON(&msg.Properties),
		}
		if encoding == "auto" && utf8.Valid(payload) {
			o["payload"], o["payload_encoding"] = string(payload), "string"
		} else {
			o["payload"], o["payload_encoding"] = base64.StdEncoding.EncodeToString(payload), "base64"
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, out)
}

// sortedKeys returns a map's keys in byte order, as RabbitMQ lists.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
