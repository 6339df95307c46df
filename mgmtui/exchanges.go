package mgmtui

import (
	"encoding/base64"
	"net/http"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/exchange"
)

func (a *API) exchangeObject(v *broker.Vhost, e *exchange.Exchange) object {
	vhost := v.Name()
	stats := exchangeStats(e.PublishIn.Load(), e.PublishOut.Load())
	rates := a.rates.rates(exchangeKey(vhost, e.Name))
	var policy any
	if p := v.ExchangePolicy(e.Name); p != "" && e.Name != "" {
		policy = p
	}
	return object{
		"name": e.Name, "vhost": vhost, "node": a.opts.Node, "type": e.Kind.String(), "durable": e.Durable,
		"auto_delete": e.AutoDelete, "internal": e.Internal, "arguments": tableToJSON(e.Args),
		"user_who_performed_action": "",
		"message_stats":             messageStats(&stats, rates, broker.StatPublishIn, broker.StatPublishOut),
		"policy":                    policy,
	}
}

func (a *API) listExchanges(w http.ResponseWriter, r *http.Request, u *user) {
	vhosts, aerr := a.visibleVhosts(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var items []object
	for _, v := range vhosts {
		ex := v.Exchanges()
		for _, name := range sortedKeys(ex) {
			items = append(items, a.exchangeObject(v, ex[name]))
		}
	}
	writeList(w, r, items)
}

// exchangeName maps the API's name for the default exchange.
func exchangeName(name string) string {
	if name == "amq.default" {
		return ""
	}
	return name
}

func (a *API) exchangeVar(r *http.Request, u *user) (*broker.Vhost, *exchange.Exchange, *apiError) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		return nil, nil, aerr
	}
	e := v.Exchange(exchangeName(pathVar(r, "name")))
	if e == nil {
		return nil, nil, notFound()
	}
	return v, e, nil
}

func (a *API) getExchange(w http.ResponseWriter, r *http.Request, u *user) {
	v, e, aerr := a.exchangeVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, a.exchangeObject(v, e))
}

func (a *API) putExchange(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	name := pathVar(r, "name")
	if aerr := a.requirePermission(u, v.Name(), broker.AccessConfigure, "exchange", name); aerr != nil {
		writeError(w, aerr)
		return
	}
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	spec := broker.ExchangeSpec{Name: name, Kind: b.str("type")}
	if spec.Kind == "" {
		writeError(w, badRequest("Missing type"))
		return
	}
	for _, f := range []struct {
		key string
		def bool
		dst *bool
	}{{"durable", true, &spec.Durable}, {"auto_delete", false, &spec.AutoDelete}, {"internal", false, &spec.Internal}} {
		if *f.dst, err = b.boolean(f.key, f.def); err != nil {
			writeError(w, err)
			return
		}
	}
	if spec.Args, err = b.table("arguments"); err != nil {
		writeError(w, err)
		return
	}
	existed := v.Exchange(name) != nil
	if _, err := v.DeclareExchange(spec, false); err != nil {
		writeError(w, err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (a *API) deleteExchange(w http.ResponseWriter, r *http.Request, u *user) {
	v, e, aerr := a.exchangeVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.requirePermission(u, v.Name(), broker.AccessConfigure, "exchange", e.Name); aerr != nil {
		writeError(w, aerr)
		return
	}
	if err := v.DeleteExchange(e.Name, r.URL.Query().Get("if-unused") == "true"); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// publish serves POST /api/exchanges/{vhost}/{name}/publish: properties,
// routing_key, payload, payload_encoding (string or base64).
func (a *API) publish(w http.ResponseWriter, r *http.Request, u *user) {
	v, e, aerr := a.exchangeVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := a.requirePermission(u, v.Name(), broker.AccessWrite, "exchange", e.Name); aerr != nil {
		writeError(w, aerr)
		return
	}
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	if !b.has("routing_key") || !b.has("payload") {
		writeError(w, badRequest("routing_key and payload are required"))
		return
	}
	payload := []byte(b.str("payload"))
	switch b.str("payload_encoding") {
	case "", "string":
	case "base64":
		if payload, err = base64.StdEncoding.DecodeString(b.str("payload")); err != nil {
			writeError(w, badRequest("payload is not valid base64"))
			return
		}
	default:
		writeError(w, badRequest("payload_encoding must be string or base64"))
		return
	}
	pm, _ := m["properties"].(map[string]any)
	props, err := propertiesFromJSON(pm)
	if err != nil {
		writeError(w, err)
		return
	}
	if props.UserID != "" && props.UserID != u.Name {
		writeError(w, badRequest("user_id property set to '%s' but authenticated user was '%s'", props.UserID, u.Name))
		return
	}
	routed, err := v.Publish(e.Name, b.str("routing_key"), props, payload)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"routed": routed})
}
