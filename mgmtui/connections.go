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

func (a *API) listConnections(w http.ResponseWriter, r *http.Request, u *user) {
	vhost, byVhost := "", false
	if _, aerr := a.vhostVarIfAny(r, u); aerr != nil {
		writeError(w, aerr)
		return
	} else if v := pathVarIfAny(r, "vhost"); v != nil {
		vhost, byVhost = *v, true
	}
	var items []object
	for _, c := range a.visibleConnections(u) {
		if !byVhost || c.Vhost == vhost {
			items = append(items, a.connectionObject(c))
		}
	}
	writeList(w, r, items)
}

// findConnection finds the request's connection and checks that u may
// act on it, as RabbitMQ's is_authorized_user does: on its own
// connections any management user may; another user's connection may be
// seen by monitoring users and administrators, and closed by
// administrators only.
func (a *API) findConnection(r *http.Request, u *user, closing bool) (broker.ConnectionInfo, *apiError) {
	name := pathVar(r, "name")
	for _, c := range a.srv.ConnectionInfos() {
		if c.Name != name {
			continue
		}
		allowed := c.User == u.Name || u.seesAll()
		if closing {
			allowed = c.User == u.Name || u.isAdmin()
		}
		if !allowed {
			return broker.ConnectionInfo{}, forbidden("User not authorised to access object")
		}
		return c, nil
	}
	return broker.ConnectionInfo{}, notFound()
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request, u *user) {
	c, aerr := a.findConnection(r, u, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, a.connectionObject(c))
}

// closeConnection force-closes a connection with 320 CONNECTION_FORCED;
// the X-Reason header gives the reason, as in RabbitMQ.
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
	a.srv.CloseConnection(c.Name, reason)
	w.WriteHeader(http.StatusNoContent)
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

// channelsOf lists channel objects, filtered by keep.
func (a *API) channelsOf(u *user, keep func(broker.ChannelInfo) bool) []object {
	peers := map[string]broker.ConnectionInfo{}
	for _, c := range a.visibleConnections(u) {
		peers[c.Name] = c
	}
	var items []object
	for _, ch := range a.srv.ChannelInfos() {
		if _, ok := peers[ch.Connection]; ok && keep(ch) {
			items = append(items, a.channelObject(ch, peers))
		}
	}
	return items
}

func (a *API) listChannels(w http.ResponseWriter, r *http.Request, u *user) {
	if _, aerr := a.vhostVarIfAny(r, u); aerr != nil {
		writeError(w, aerr)
		return
	}
	vhost := pathVarIfAny(r, "vhost")
	writeList(w, r, a.channelsOf(u, func(ch broker.ChannelInfo) bool { return vhost == nil || ch.Vhost == *vhost }))
}

func (a *API) connectionChannels(w http.ResponseWriter, r *http.Request, u *user) {
	c, aerr := a.findConnection(r, u, false)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeList(w, r, a.channelsOf(u, func(ch broker.ChannelInfo) bool { return ch.Connection == c.Name }))
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request, u *user) {
	name := pathVar(r, "name")
	for _, o := range a.channelsOf(u, func(broker.ChannelInfo) bool { return true }) {
		if o["name"] == name {
			writeJSON(w, http.StatusOK, o)
			return
		}
	}
	writeError(w, notFound())
}

func (a *API) listConsumers(w http.ResponseWriter, r *http.Request, u *user) {
	vhosts, aerr := a.visibleVhosts(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	seen := map[string]bool{}
	for _, v := range vhosts {
		seen[v.Name()] = true
	}
	peers := map[string]broker.ConnectionInfo{}
	for _, c := range a.srv.ConnectionInfos() {
		peers[c.Name] = c
	}
	var items []object
	for _, k := range a.srv.ConsumerInfos() {
		if seen[k.Vhost] {
			items = append(items, consumerObject(k, peers[k.Connection]))
		}
	}
	writeList(w, r, items)
}

func consumerObject(k broker.ConsumerInfo, c broker.ConnectionInfo) object {
	peerHost, peerPort, _ := splitHost(c.Peer)
	return object{
		"consumer_tag": k.Tag, "exclusive": k.Exclusive, "ack_required": k.AckRequired,
		"prefetch_count": k.PrefetchCount, "active": true, "activity_status": "up",
		"arguments": map[string]any{},
		"queue":     map[string]any{"name": k.Queue, "vhost": k.Vhost},
		"channel_details": map[string]any{
			"name": fmt.Sprintf("%s (%d)", k.Connection, k.Channel), "number": k.Channel,
			"connection_name": k.Connection, "peer_host": peerHost, "peer_port": peerPort, "user": c.User,
		},
	}
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
