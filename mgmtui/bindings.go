package mgmtui

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/exchange"
)

// propertiesKey identifies a binding among those between the same source
// and destination, as RabbitMQ's properties_key: "~" for an empty key
// without arguments, the quoted key alone without arguments, else the
// quoted key, "~" and a hash of the arguments.
func propertiesKey(key string, args amqp.Table) string {
	if len(args) == 0 {
		if key == "" {
			return "~"
		}
		return quoteKey(key)
	}
	sum := sha256.Sum256(amqp.AppendTable(nil, args))
	return quoteKey(key) + "~" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// quoteKey percent-encodes a routing key as RabbitMQ does in properties
// keys (letters, digits, ".", "-" and "_" stay; a space becomes "+"), so
// "~" only ever separates the parts.
func quoteKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func bindingObject(b broker.BindingInfo) object {
	return object{
		"source": b.Source, "vhost": b.Vhost, "destination": b.Destination,
		"destination_type": b.DestinationType, "routing_key": b.RoutingKey,
		"arguments": tableToJSON(b.Arguments), "properties_key": propertiesKey(b.RoutingKey, b.Arguments),
	}
}

// bindingsWhere lists the bindings of the visible vhosts that keep accepts.
func (a *API) bindingsWhere(r *http.Request, u *user, keep func(broker.BindingInfo) bool) ([]object, *apiError) {
	vhosts, aerr := a.visibleVhosts(r, u)
	if aerr != nil {
		return nil, aerr
	}
	var items []object
	for _, v := range vhosts {
		for _, b := range v.BindingInfos() {
			if keep(b) {
				items = append(items, bindingObject(b))
			}
		}
	}
	return items, nil
}

func (a *API) listBindings(w http.ResponseWriter, r *http.Request, u *user) {
	items, aerr := a.bindingsWhere(r, u, func(broker.BindingInfo) bool { return true })
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeList(w, r, items)
}

// queueBindings serves GET /api/queues/{vhost}/{name}/bindings.
func (a *API) queueBindings(w http.ResponseWriter, r *http.Request, u *user) {
	_, q, aerr := a.queueVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	items, _ := a.bindingsWhere(r, u, func(b broker.BindingInfo) bool {
		return b.DestinationType == "queue" && b.Destination == q.Name()
	})
	writeList(w, r, items)
}

// exchangeBindings serves /api/exchanges/{vhost}/{name}/bindings/source
// and /destination.
func (a *API) exchangeBindings(asSource bool) handler {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		_, e, aerr := a.exchangeVar(r, u)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		items, _ := a.bindingsWhere(r, u, func(b broker.BindingInfo) bool {
			if asSource {
				return b.Source == e.Name
			}
			return b.DestinationType == "exchange" && b.Destination == e.Name
		})
		writeList(w, r, items)
	}
}

// bindingEnds reads /api/bindings/{vhost}/e/{source}/{q|e}/{destination}.
func (a *API) bindingEnds(r *http.Request, u *user, destExchange bool) (*broker.Vhost, string, exchange.Destination, *apiError) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		return nil, "", exchange.Destination{}, aerr
	}
	src := exchangeName(pathVar(r, "source"))
	dst := exchange.Destination{Name: pathVar(r, "destination"), IsExchange: destExchange}
	if v.Exchange(src) == nil {
		return nil, "", dst, notFound()
	}
	if destExchange && v.Exchange(dst.Name) == nil || !destExchange && v.Queue(dst.Name) == nil {
		return nil, "", dst, notFound()
	}
	return v, src, dst, nil
}

func (a *API) listBindingsBetween(destExchange bool) handler {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		_, src, dst, aerr := a.bindingEnds(r, u, destExchange)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		items, _ := a.bindingsWhere(r, u, func(b broker.BindingInfo) bool {
			return b.Source == src && b.Destination == dst.Name && (b.DestinationType == "exchange") == destExchange
		})
		writeList(w, r, items)
	}
}

// createBinding serves POST /api/bindings/{vhost}/e/{source}/{q|e}/{dest}
// with routing_key and arguments; 201 with the new binding's Location.
func (a *API) createBinding(destExchange bool) handler {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		v, src, dst, aerr := a.bindingEnds(r, u, destExchange)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		if aerr := a.checkBindPermissions(u, v.Name(), src, dst); aerr != nil {
			writeError(w, aerr)
			return
		}
		m, err := decodeBody(r)
		if err != nil {
			writeError(w, err)
			return
		}
		b := body(m)
		args, err := b.table("arguments")
		if err != nil {
			writeError(w, err)
			return
		}
		binding := exchange.Binding{Source: src, Destination: dst, Key: b.str("routing_key"), Args: args}
		if err := v.Bind(binding); err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Location", strings.TrimSuffix(r.URL.EscapedPath(), "/")+"/"+url.PathEscape(propertiesKey(binding.Key, args)))
		w.WriteHeader(http.StatusCreated)
	}
}

// checkBindPermissions applies RabbitMQ's rule: write on the destination,
// read on the source.
func (a *API) checkBindPermissions(u *user, vhost, src string, dst exchange.Destination) *apiError {
	kind := "queue"
	if dst.IsExchange {
		kind = "exchange"
	}
	if aerr := a.requirePermission(u, vhost, broker.AccessWrite, kind, dst.Name); aerr != nil {
		return aerr
	}
	return a.requirePermission(u, vhost, broker.AccessRead, "exchange", src)
}

// findBinding finds the binding named by the path's properties key.
func (a *API) findBinding(r *http.Request, u *user, destExchange bool) (*broker.Vhost, broker.BindingInfo, *apiError) {
	v, src, dst, aerr := a.bindingEnds(r, u, destExchange)
	if aerr != nil {
		return nil, broker.BindingInfo{}, aerr
	}
	props := pathVar(r, "props")
	for _, b := range v.BindingInfos() {
		if b.Source == src && b.Destination == dst.Name && (b.DestinationType == "exchange") == destExchange &&
			propertiesKey(b.RoutingKey, b.Arguments) == props {
			return v, b, nil
		}
	}
	return nil, broker.BindingInfo{}, notFound()
}

func (a *API) getBinding(destExchange bool) handler {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		_, b, aerr := a.findBinding(r, u, destExchange)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		writeJSON(w, http.StatusOK, bindingObject(b))
	}
}

func (a *API) deleteBinding(destExchange bool) handler {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		v, b, aerr := a.findBinding(r, u, destExchange)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		dst := exchange.Destination{Name: b.Destination, IsExchange: destExchange}
		if aerr := a.checkBindPermissions(u, v.Name(), b.Source, dst); aerr != nil {
			writeError(w, aerr)
			return
		}
		if err := v.Unbind(exchange.Binding{Source: b.Source, Destination: dst, Key: b.RoutingKey, Args: b.Arguments}); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
