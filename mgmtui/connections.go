package mgmtui

import (
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/warrenmq/warren/broker"
)

// visibleConnections are the connections u may see: all for monitoring
// and administrator users, else their own.
func (a *API) visibleConnections(u *user) []broker.ConnectionInfo {
	all := a.srv.ConnectionInfos()
	if u.seesAll() {
		return all
	}
	var out []broker.ConnectionInfo
	for _, c := range all {
		if c.User == u.Name {
			out = append(out, c)
		}
	}
	return out
}

func splitHost(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0, err
	}
	n, _ := strconv.Atoi(p)
	return h, n, nil
}

// octets is where a connection's byte counters sit among its sampled
// values, after the message stats and deliver_get.
const octets = int(broker.NumStats) + 1

func (a *API) connectionObject(c broker.ConnectionInfo) object {
	peerHost, peerPort, _ := splitHost(c.Peer)
	host, localPort, _ := splitHost(c.Local)
	rates := a.rates.rates(connectionKey(c.Name))
	o := object{
		"name": c.Name, "node": a.opts.Node, "vhost": c.Vhost, "user": c.User,
		"user_who_performed_action": c.User,
		"type":                      "network", "protocol": "AMQP 0-9-1", "state": "running",
		"host": host, "port": localPort, "peer_host": peerHost, "peer_port": peerPort,
		"ssl": false, "channels": c.Channels, "channel_max": c.ChannelMax, "frame_max": c.FrameMax,
		"timeout": int(c.Heartbeat.Seconds()), "connected_at": c.ConnectedAt.UnixMilli(),
		"client_properties": tableToJSON(c.ClientProperties),
		"recv_oct":          c.RecvOct, "recv_oct_details": details(rateAt(rates, octets)),
		"send_oct": c.SendOct, "send_oct_details": details(rateAt(rates, octets+1)),
		"message_stats": messageStats(&c.Stats, rates),
	}
	if n, ok := c.ClientProperties["connection_name"].(string); ok {
		o["user_provided_name"] = n
	}
	return o
}

// localConnections renders this node's connections that u may see.
func (a *API) localConnections(u *user) []object {
	var items []object
	for _, c := range a.visibleConnections(u) {
		items = append(items, a.connectionObject(c))
	}
	return items
}

// connections are the connections of the whole cluster that u may see.
func (a *API) connections(r *http.Request, u *user) []object {
	return a.gather(r.Context(), u, peerConnections, a.localConnections(u))
}

func (a *API) listConnections(w http.ResponseWriter, r *http.Request, u *user) {
	if _, aerr := a.vhostVarIfAny(r, u); aerr != nil {
		writeError(w, aerr)
		return
	}
	vhost := pathVarIfAny(r, "vhost")
	writeList(w, r, filterObjects(a.connections(r, u), func(o object) bool { return vhost == nil || o["vhost"] == *vhost }))
}

// findConnection finds the request's connection, on any node, and checks
// that u may act on it, as RabbitMQ's is_authorized_user does: on its own
// connections any management user may; another user's connection may be
// seen by monitoring users and administrators, and closed by
// administrators only. (Another user's connection on another node is not
// listed to a user who may not see it: 404 there, 403 here.)
func (a *API) findConnection(r *http.Request, u *user, closing bool) (object, *apiError) {
	name := pathVar(r, "name")
	for _, o := range a.connections(r, u) {
		if o["name"] != name {
			continue
		}
		if closing && o["user"] != u.Name && !u.isAdmin() {
			return nil, forbidden("User not authorised to access object")
		}
		return o, nil
	}
	for _, c := range a.srv.ConnectionInfos() {
		if c.Name == name {
			return nil, forbidden("User not authorised to access object")
		}
	}
	return nil, notFound()
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request, u *user) {
	c, aerr := a.findConnection(r, u, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// closeConnection force-closes a connection, on whichever node it is,
// with 320 CONNECTION_FORCED; the X-Reason header gives the reason, as in
// RabbitMQ.
func (a *API) closeConnection(w http.ResponseWriter, r *http.Request, u *user) {
	c, aerr := a.findConnection(r, u, true)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	reason := r.Header.Get("X-Reason")
	if reason == "" {
		reason = "Closed via management plugin"
	}
	name, _ := c["name"].(string)
	node, _ := c["node"].(string)
	if node == a.opts.Node {
		if !a.closeLocal(u, name, reason) {
			writeError(w, notFound())
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	res := ask[peerClosed](r.Context(), a, []string{node}, peerRequest{Op: peerClose, User: u.Name, Name: name, Reason: reason})
	got, answered := res[node]
	switch {
	case !answered:
		writeError(w, &apiError{http.StatusServiceUnavailable, "unavailable", "node " + node + " did not answer"})
	case !got.Closed:
		writeError(w, notFound())
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// closeLocal closes a connection of this node that u may see.
func (a *API) closeLocal(u *user, name, reason string) bool {
	for _, c := range a.visibleConnections(u) {
		if c.Name == name {
			return a.srv.CloseConnection(name, reason)
		}
	}
	return false
}

func (a *API) channelObject(ch broker.ChannelInfo, peers map[string]broker.ConnectionInfo) object {
	c := peers[ch.Connection]
	peerHost, peerPort, _ := splitHost(c.Peer)
	rates := a.rates.rates(channelKey(ch.Connection, ch.Number))
	return object{
		"name":   fmt.Sprintf("%s (%d)", ch.Connection, ch.Number),
		"number": ch.Number, "node": a.opts.Node, "vhost": ch.Vhost, "user": ch.User,
		"user_who_performed_action": ch.User,
		"connection_details":        map[string]any{"name": ch.Connection, "peer_host": peerHost, "peer_port": peerPort},
		"consumer_count":            ch.Consumers, "messages_unacknowledged": ch.Unacked,
		"messages_unconfirmed": 0, "messages_uncommitted": 0, "acks_uncommitted": 0,
		"prefetch_count": ch.Prefetch, "global_prefetch_count": ch.GlobalPrefetch,
		"confirm": ch.Confirm, "transactional": ch.Transactional, "state": "running",
		"message_stats": messageStats(&ch.Stats, rates),
	}
}

// localChannels renders this node's channels of the connections u may see.
func (a *API) localChannels(u *user) []object {
	peers := map[string]broker.ConnectionInfo{}
	for _, c := range a.visibleConnections(u) {
		peers[c.Name] = c
	}
	var items []object
	for _, ch := range a.srv.ChannelInfos() {
		if _, ok := peers[ch.Connection]; ok {
			items = append(items, a.channelObject(ch, peers))
		}
	}
	return items
}

// channels are the channels of the whole cluster that u may see.
func (a *API) channels(r *http.Request, u *user) []object {
	return a.gather(r.Context(), u, peerChannels, a.localChannels(u))
}

func (a *API) listChannels(w http.ResponseWriter, r *http.Request, u *user) {
	if _, aerr := a.vhostVarIfAny(r, u); aerr != nil {
		writeError(w, aerr)
		return
	}
	vhost := pathVarIfAny(r, "vhost")
	writeList(w, r, filterObjects(a.channels(r, u), func(o object) bool { return vhost == nil || o["vhost"] == *vhost }))
}

func (a *API) connectionChannels(w http.ResponseWriter, r *http.Request, u *user) {
	c, aerr := a.findConnection(r, u, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeList(w, r, filterObjects(a.channels(r, u), func(o object) bool {
		d, _ := o["connection_details"].(map[string]any)
		return d != nil && d["name"] == c["name"]
	}))
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request, u *user) {
	name := pathVar(r, "name")
	for _, o := range a.channels(r, u) {
		if o["name"] == name {
			writeJSON(w, http.StatusOK, o)
			return
		}
	}
	writeError(w, notFound())
}

// localConsumers renders this node's consumers in the vhosts u may see.
func (a *API) localConsumers(u *user) []object {
	peers := map[string]broker.ConnectionInfo{}
	for _, c := range a.srv.ConnectionInfos() {
		peers[c.Name] = c
	}
	var items []object
	for _, k := range a.srv.ConsumerInfos() {
		if a.canSee(u, k.Vhost) {
			items = append(items, a.consumerObject(k, peers[k.Connection]))
		}
	}
	return items
}

// consumers are the consumers of the whole cluster in the vhosts u may see.
func (a *API) consumers(r *http.Request, u *user) []object {
	return a.gather(r.Context(), u, peerConsumers, a.localConsumers(u))
}

func (a *API) listConsumers(w http.ResponseWriter, r *http.Request, u *user) {
	if _, aerr := a.vhostVarIfAny(r, u); aerr != nil {
		writeError(w, aerr)
		return
	}
	vhost := pathVarIfAny(r, "vhost")
	writeList(w, r, filterObjects(a.consumers(r, u), func(o object) bool {
		q, _ := o["queue"].(map[string]any)
		return vhost == nil || (q != nil && q["vhost"] == *vhost)
	}))
}

func (a *API) consumerObject(k broker.ConsumerInfo, c broker.ConnectionInfo) object {
	peerHost, peerPort, _ := splitHost(c.Peer)
	return object{
		"consumer_tag": k.Tag, "exclusive": k.Exclusive, "ack_required": k.AckRequired,
		"prefetch_count": k.PrefetchCount, "active": true, "activity_status": "up",
		"arguments": map[string]any{},
		"queue":     map[string]any{"name": k.Queue, "vhost": k.Vhost},
		"channel_details": map[string]any{
			"name": fmt.Sprintf("%s (%d)", k.Connection, k.Channel), "number": k.Channel,
			"connection_name": k.Connection, "peer_host": peerHost, "peer_port": peerPort, "user": c.User,
			"node": a.opts.Node,
		},
	}
}

// filterObjects returns the items keep keeps.
func filterObjects(items []object, keep func(object) bool) []object {
	var out []object
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out
}

// pathVarIfAny returns a decoded path variable, or nil when the route has none.
func pathVarIfAny(r *http.Request, name string) *string {
	if _, ok := muxVars(r)[name]; !ok {
		return nil
	}
	v := pathVar(r, name)
	return &v
}

// vhostVarIfAny checks the request's vhost when the route has one.
func (a *API) vhostVarIfAny(r *http.Request, u *user) (*broker.Vhost, *apiError) {
	if pathVarIfAny(r, "vhost") == nil {
		return nil, nil
	}
	return a.vhostVar(r, u)
}
