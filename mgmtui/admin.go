package mgmtui

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// hashingAlgorithm is the only password hashing Warren stores, RabbitMQ's default.
const hashingAlgorithm = "rabbit_password_hashing_sha256"

// tagList returns tags as a JSON array (never null).
func tagList(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// parseTags reads tags as RabbitMQ accepts them: a comma-separated string
// or an array of strings.
func parseTags(v any) ([]string, *apiError) {
	var out []string
	switch v := v.(type) {
	case nil:
	case string:
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	case []any:
		for _, t := range v {
			s, ok := t.(string)
			if !ok {
				return nil, badRequest("tags must be strings")
			}
			out = append(out, s)
		}
	default:
		return nil, badRequest("tags must be a string or an array")
	}
	return out, nil
}

func userObject(u broker.User) object {
	return object{
		"name": u.Name, "password_hash": u.PasswordHash, "hashing_algorithm": hashingAlgorithm,
		"tags": tagList(u.Tags), "limits": map[string]any{},
	}
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, _ *user) {
	var items []object
	for _, u := range a.srv.Users().List() {
		items = append(items, userObject(u))
	}
	writeList(w, r, items)
}

func (a *API) usersWithoutPermissions(w http.ResponseWriter, r *http.Request, _ *user) {
	has := map[string]bool{}
	for _, p := range a.srv.Users().Permissions() {
		has[p.User] = true
	}
	var items []object
	for _, u := range a.srv.Users().List() {
		if !has[u.Name] {
			items = append(items, userObject(u))
		}
	}
	writeList(w, r, items)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, _ *user) {
	u, ok := a.srv.Users().Get(pathVar(r, "user"))
	if !ok {
		writeError(w, notFound())
		return
	}
	writeJSON(w, http.StatusOK, userObject(u))
}

// putUser creates or updates a user from password or password_hash (with
// hashing_algorithm) and tags.
func (a *API) putUser(w http.ResponseWriter, r *http.Request, _ *user) {
	name := pathVar(r, "user")
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	old, existed := a.srv.Users().Get(name)
	tags, aerr := parseTags(m["tags"])
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	u := broker.User{Name: name, Tags: tags, PasswordHash: old.PasswordHash}
	switch {
	case b.has("password"):
		u.PasswordHash = broker.HashPassword(b.str("password"))
	case b.has("password_hash"):
		if alg := b.str("hashing_algorithm"); alg != "" && alg != hashingAlgorithm {
			writeError(w, badRequest("unsupported hashing_algorithm %q: Warren stores %s", alg, hashingAlgorithm))
			return
		}
		h := b.str("password_hash")
		if raw, err := base64.StdEncoding.DecodeString(h); h != "" && (err != nil || len(raw) != 36) {
			writeError(w, badRequest("password_hash is not a %s hash", hashingAlgorithm))
			return
		}
		u.PasswordHash = h
	case !existed:
		writeError(w, badRequest("Mandatory field 'password' or 'password_hash' not found"))
		return
	}
	if err := a.srv.PutUser(u); err != nil {
		writeError(w, err)
		return
	}
	created(w, existed)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, _ *user) {
	ok, err := a.srv.DeleteUser(pathVar(r, "user"))
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

// bulkDeleteUsers serves POST /api/users/bulk-delete {"users": [...]}.
func (a *API) bulkDeleteUsers(w http.ResponseWriter, r *http.Request, _ *user) {
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	names, _ := m["users"].([]any)
	for _, n := range names {
		if s, ok := n.(string); ok {
			if _, err := a.srv.DeleteUser(s); err != nil {
				writeError(w, err)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// created writes 204 for an update, 201 for a creation.
func created(w http.ResponseWriter, existed bool) {
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (a *API) vhostObject(v *broker.Vhost) object {
	var totals queueTotals
	for _, q := range v.Queues() {
		totals.add(q.Info())
	}
	stats := v.MessageStats()
	rates := a.rates.rates(vhostKey(v.Name()))
	o := totals.object(rates)
	o["name"] = v.Name()
	o["description"] = ""
	o["tags"] = []string{}
	o["metadata"] = map[string]any{"description": "", "tags": []string{}}
	o["default_queue_type"] = "classic"
	o["tracing"] = false
	o["cluster_state"] = map[string]string{a.opts.Node: "running"}
	o["message_stats"] = messageStats(&stats, rates)
	return o
}

func (a *API) listVhosts(w http.ResponseWriter, r *http.Request, u *user) {
	vhosts, _ := a.visibleVhosts(r, u)
	var items []object
	for _, v := range vhosts {
		items = append(items, a.vhostObject(v))
	}
	writeList(w, r, items)
}

func (a *API) getVhost(w http.ResponseWriter, r *http.Request, u *user) {
	v, aerr := a.vhostVar(r, u)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, a.vhostObject(v))
}

// putVhost creates a vhost; as in RabbitMQ, the creating user gets full
// permissions on it.
func (a *API) putVhost(w http.ResponseWriter, r *http.Request, u *user) {
	name := pathVar(r, "vhost")
	if name == "" {
		writeError(w, badRequest("vhost name must not be empty"))
		return
	}
	existed, err := a.srv.AddVhostFor(name, u.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	created(w, existed)
}

func (a *API) deleteVhost(w http.ResponseWriter, r *http.Request, _ *user) {
	ok, err := a.srv.DeleteVhost(pathVar(r, "vhost"))
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

func permissionObject(p broker.Permission) object {
	return object{"user": p.User, "vhost": p.Vhost, "configure": p.Configure, "write": p.Write, "read": p.Read}
}

// listPermissions lists permissions, of one vhost or one user when the
// route names them.
func (a *API) listPermissions(w http.ResponseWriter, r *http.Request, _ *user) {
	vhost, usr := pathVarIfAny(r, "vhost"), pathVarIfAny(r, "user")
	if vhost != nil && a.srv.Vhost(*vhost) == nil {
		writeError(w, notFound())
		return
	}
	if usr != nil {
		if _, ok := a.srv.Users().Get(*usr); !ok {
			writeError(w, notFound())
			return
		}
	}
	var items []object
	perms := a.srv.Users().Permissions()
	slices.SortFunc(perms, func(x, y broker.Permission) int {
		if c := strings.Compare(x.Vhost, y.Vhost); c != 0 {
			return c
		}
		return strings.Compare(x.User, y.User)
	})
	for _, p := range perms {
		if (vhost == nil || p.Vhost == *vhost) && (usr == nil || p.User == *usr) {
			items = append(items, permissionObject(p))
		}
	}
	writeList(w, r, items)
}

func (a *API) getPermission(w http.ResponseWriter, r *http.Request, _ *user) {
	p, ok := a.srv.Users().Permission(pathVar(r, "user"), pathVar(r, "vhost"))
	if !ok {
		writeError(w, notFound())
		return
	}
	writeJSON(w, http.StatusOK, permissionObject(p))
}

func (a *API) putPermission(w http.ResponseWriter, r *http.Request, _ *user) {
	vhost, name := pathVar(r, "vhost"), pathVar(r, "user")
	if a.srv.Vhost(vhost) == nil {
		writeError(w, notFound())
		return
	}
	if _, ok := a.srv.Users().Get(name); !ok {
		writeError(w, badRequest("user '%s' does not exist", name))
		return
	}
	m, err := decodeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b := body(m)
	for _, k := range []string{"configure", "write", "read"} {
		if !b.has(k) {
			writeError(w, badRequest("Mandatory field '%s' not found", k))
			return
		}
	}
	_, existed := a.srv.Users().Permission(name, vhost)
	p := broker.Permission{User: name, Vhost: vhost, Configure: b.str("configure"), Write: b.str("write"), Read: b.str("read")}
	if err := a.srv.SetPermission(p); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	created(w, existed)
}

func (a *API) deletePermission(w http.ResponseWriter, r *http.Request, _ *user) {
	ok, err := a.srv.ClearPermission(pathVar(r, "user"), pathVar(r, "vhost"))
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
