package mgmtui

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// policyRoutes registers /api/policies and /api/definitions.
func (a *API) policyRoutes() {
	h := a.handle
	h("/api/policies", policy, a.listPolicies, get)
	h("/api/policies/{vhost}", policy, a.listPolicies, get)
	h("/api/policies/{vhost}/{name}", policy, a.getPolicy, get)
	h("/api/policies/{vhost}/{name}", policy, a.putPolicy, put)
	h("/api/policies/{vhost}/{name}", policy, a.deletePolicy, del)
	h("/api/definitions", adminOnly, a.exportDefinitions, get)
	h("/api/definitions", adminOnly, a.importDefinitions, post)
	h("/api/definitions/{vhost}", adminOnly, a.exportDefinitions, get)
	h("/api/definitions/{vhost}", adminOnly, a.importDefinitions, post)
}

func policyObject(p broker.Policy) object {
	return object{"vhost": p.Vhost, "name": p.Name, "pattern": p.Pattern, "apply-to": p.ApplyTo, "definition": p.Definition, "priority": p.Priority}
}

func (a *API) listPolicies(w http.ResponseWriter, r *http.Request, u *user) {
	vhosts, aerr := a.visibleVhosts(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var items []object
	for _, v := range vhosts {
		for _, p := range v.Policies() {
			items = append(items, policyObject(p))
		}
	}
	writeList(w, r, items)
}

func (a *API) getPolicy(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	name := pathVar(r, "name")
	for _, p := range v.Policies() {
		if p.Name == name {
			writeJSON(w, http.StatusOK, policyObject(p))
			return
		}
	}
	writeError(w, notFound())
}

// putPolicy creates or replaces a policy: pattern, definition, priority
// and apply-to; an invalid one is 400 with the reason.
func (a *API) putPolicy(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	if !b.has("pattern") || !b.has("definition") {
		writeError(w, badRequest("Mandatory fields 'pattern' and 'definition' not found"))
		return
	}
	prio, err := b.integer("priority", 0)
	if err != nil {
		writeError(w, err)
		return
	}
	def, ok := m["definition"].(map[string]any)
	if !ok {
		if s, isString := m["definition"].(string); isString && json.Unmarshal([]byte(s), &def) == nil {
			ok = true
		}
	}
	if !ok {
		writeError(w, badRequest("definition must be an object"))
		return
	}
	name := pathVar(r, "name")
	existed := v.PolicyDefinition(name) != nil
	p := broker.Policy{Name: name, Pattern: b.str("pattern"), ApplyTo: b.str("apply-to"), Priority: int(prio), Definition: plainJSON(def)}
	if err := v.PutPolicy(p); err != nil {
		writeError(w, err)
		return
	}
	created(w, existed)
}

// plainJSON turns json.Number values into float64, as encoding/json
// decodes by default, so that stored definitions compare and print alike.
func plainJSON(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case json.Number:
			f, _ := v.Float64()
			out[k] = f
		case map[string]any:
			out[k] = plainJSON(v)
		default:
			out[k] = v
		}
	}
	return out
}

func (a *API) deletePolicy(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ok, err := v.DeletePolicy(pathVar(r, "name"))
	if err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		writeError(w, notFound())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// exportDefinitions serves GET /api/definitions[/{vhost}]; with
// ?download=name it is sent as an attachment.
func (a *API) exportDefinitions(w http.ResponseWriter, r *http.Request, _ *user) {
	vhost := ""
	if v := pathVarIfAny(r, "vhost"); v != nil {
		vhost = *v
	}
	d, err := a.srv.ExportDefinitions(vhost)
	if err != nil {
		writeError(w, err)
		return
	}
	if name := r.URL.Query().Get("download"); name != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(name, `"`, "")+`"`)
	}
	writeJSON(w, http.StatusOK, d)
}

// importDefinitions serves POST /api/definitions[/{vhost}] with the
// definitions as the JSON body (or a multipart "file" field, as the web
// UI's upload form sends it).
func (a *API) importDefinitions(w http.ResponseWriter, r *http.Request, _ *user) {
	var src io.Reader = io.LimitReader(r.Body, maxBody)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		f, _, err := r.FormFile("file")
		if err != nil {
			writeError(w, badRequest("no definitions file in the form: %v", err))
			return
		}
		defer f.Close()
		src = io.LimitReader(f, maxBody)
	}
	var d broker.Definitions
	if err := json.NewDecoder(src).Decode(&d); err != nil {
		writeError(w, badRequest("invalid definitions JSON: %v", err))
		return
	}
	vhost := ""
	if v := pathVarIfAny(r, "vhost"); v != nil {
		vhost = *v
	}
	if err := a.srv.ImportDefinitions(d, vhost); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
