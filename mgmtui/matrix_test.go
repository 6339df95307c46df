package mgmtui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// The tag/route matrix of the management API. Every mutating route (and
// the reads of a connection, which share its rule) is tried by a user of
// each tag, all with full permissions on "/", so that only the tags
// differ. What is allowed follows RabbitMQ's rabbit_mgmt_util: any
// management user may change exchanges, queues and bindings, publish and
// get (subject to its AMQP permissions); policymakers and administrators
// policies; administrators vhosts, users, permissions and definitions; a
// user with no management tag nothing. A connection may be seen and closed
// by its own user; another user's connection seen by monitoring users and
// administrators, closed by administrators only. The same requests
// against RabbitMQ 3.10.8 gave this matrix, except that RabbitMQ refuses
// with 401 and Warren with 403 (its UI takes 401 for a failed login).

// matrixTags are the tags tried, by user name.
var matrixTags = []struct{ user, tags string }{
	{"adm", "administrator"}, {"mon", "monitoring"}, {"pol", "policymaker"}, {"mgt", "management"}, {"non", ""},
}

// matrixRoute is one request of the matrix. setup (as guest) prepares what
// the request of user u acts on; allowed lists the users it succeeds for.
type matrixRoute struct {
	method  string
	path    func(u string) string
	body    func(u string) any
	setup   func(f *fixture, u string)
	allowed string // user names separated by spaces
}

const (
	everyManager = "adm mon pol mgt"
	policyMakers = "adm pol"
	adminsOnly   = "adm"
)

func matrixRoutes() []matrixRoute {
	q := func(u string) string { return "q-" + u }
	x := func(u string) string { return "x-" + u }
	fixed := func(p string) func(string) string { return func(string) string { return p } }
	queue := func(f *fixture, u string) { f.as(put, "/api/queues/%2F/"+q(u), map[string]any{}) }
	exch := func(f *fixture, u string) { f.as(put, "/api/exchanges/%2F/"+x(u), map[string]any{"type": "direct"}) }
	user := func(f *fixture, u string) { f.as(put, "/api/users/u-"+u, map[string]any{"password": "x", "tags": ""}) }
	perms := map[string]any{"configure": ".*", "write": ".*", "read": ".*"}
	pol := map[string]any{"pattern": "^zz", "definition": map[string]any{"max-length": 1}, "apply-to": "queues"}
	defs := func(name string, withVhost bool) func(string) any {
		return func(u string) any {
			x := map[string]any{"name": name + u, "type": "direct", "durable": true, "auto_delete": false, "internal": false, "arguments": map[string]any{}}
			if withVhost {
				x["vhost"] = "/"
			}
			return map[string]any{"exchanges": []any{x}}
		}
	}
	return []matrixRoute{
		{put, func(u string) string { return "/api/vhosts/v-" + u }, nil, nil, adminsOnly},
		{del, func(u string) string { return "/api/vhosts/v-" + u }, nil, func(f *fixture, u string) { f.as(put, "/api/vhosts/v-"+u, nil) }, adminsOnly},
		{put, func(u string) string { return "/api/users/u-" + u }, func(string) any { return map[string]any{"password": "x", "tags": ""} }, nil, adminsOnly},
		{del, func(u string) string { return "/api/users/u-" + u }, nil, user, adminsOnly},
		{post, fixed("/api/users/bulk-delete"), func(u string) any { return map[string]any{"users": []string{"u-" + u}} }, user, adminsOnly},
		{put, func(u string) string { return "/api/permissions/%2F/u-" + u }, func(string) any { return perms }, user, adminsOnly},
		{del, func(u string) string { return "/api/permissions/%2F/u-" + u }, nil, func(f *fixture, u string) {
			user(f, u)
			f.as(put, "/api/permissions/%2F/u-"+u, perms)
		}, adminsOnly},
		{put, func(u string) string { return "/api/exchanges/%2F/" + x(u) }, func(string) any { return map[string]any{"type": "direct"} }, nil, everyManager},
		{del, func(u string) string { return "/api/exchanges/%2F/" + x(u) }, nil, exch, everyManager},
		{post, fixed("/api/exchanges/%2F/amq.default/publish"), func(u string) any {
			return map[string]any{"properties": map[string]any{}, "routing_key": q(u), "payload": "x", "payload_encoding": "string"}
		}, queue, everyManager},
		{put, func(u string) string { return "/api/queues/%2F/" + q(u) }, func(string) any { return map[string]any{} }, nil, everyManager},
		{del, func(u string) string { return "/api/queues/%2F/" + q(u) }, nil, queue, everyManager},
		{del, func(u string) string { return "/api/queues/%2F/" + q(u) + "/contents" }, nil, queue, everyManager},
		{post, func(u string) string { return "/api/queues/%2F/" + q(u) + "/get" }, func(string) any {
			return map[string]any{"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
		}, queue, everyManager},
		{post, func(u string) string { return "/api/bindings/%2F/e/amq.direct/q/" + q(u) }, func(string) any { return map[string]any{"routing_key": "k"} }, queue, everyManager},
		{del, func(u string) string { return "/api/bindings/%2F/e/amq.direct/q/" + q(u) + "/k" }, nil, func(f *fixture, u string) {
			queue(f, u)
			f.as(post, "/api/bindings/%2F/e/amq.direct/q/"+q(u), map[string]any{"routing_key": "k"})
		}, everyManager},
		{post, func(u string) string { return "/api/bindings/%2F/e/amq.direct/e/" + x(u) }, func(string) any { return map[string]any{"routing_key": "k"} }, exch, everyManager},
		{del, func(u string) string { return "/api/bindings/%2F/e/amq.direct/e/" + x(u) + "/k" }, nil, func(f *fixture, u string) {
			exch(f, u)
			f.as(post, "/api/bindings/%2F/e/amq.direct/e/"+x(u), map[string]any{"routing_key": "k"})
		}, everyManager},
		{put, func(u string) string { return "/api/policies/%2F/p-" + u }, func(string) any { return pol }, nil, policyMakers},
		{del, func(u string) string { return "/api/policies/%2F/p-" + u }, nil, func(f *fixture, u string) { f.as(put, "/api/policies/%2F/p-"+u, pol) }, policyMakers},
		{post, fixed("/api/definitions"), defs("d-", true), nil, adminsOnly},
		{post, fixed("/api/definitions/%2F"), defs("dv-", false), nil, adminsOnly},
	}
}

// allows reports whether the space-separated list names u.
func allows(list, u string) bool {
	for i := 0; i+len(u) <= len(list); i++ {
		if list[i:i+len(u)] == u && (i == 0 || list[i-1] == ' ') && (i+len(u) == len(list) || list[i+len(u)] == ' ') {
			return true
		}
	}
	return false
}

// matrixUsers creates a user per tag, with full permissions on "/".
func matrixUsers(f *fixture) {
	for _, m := range matrixTags {
		f.expect(http.StatusCreated, put, "/api/users/"+m.user, map[string]any{"password": "pw-" + m.user, "tags": m.tags})
		f.expect(http.StatusCreated, put, "/api/permissions/%2F/"+m.user, map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	}
}

// TestAPIRoutesByTag runs every mutating route as a user of each tag.
func TestAPIRoutesByTag(t *testing.T) {
	f := newFixture(t)
	matrixUsers(f)
	for _, rt := range matrixRoutes() {
		for _, m := range matrixTags {
			if rt.setup != nil {
				rt.setup(f, m.user)
			}
			var body any
			if rt.body != nil {
				body = rt.body(m.user)
			}
			path := rt.path(m.user)
			r := f.request(rt.method, path, m.user, "pw-"+m.user, body)
			want := allows(rt.allowed, m.user)
			if got := r.status >= 200 && r.status < 300; got != want || (!want && r.status != http.StatusForbidden) {
				t.Errorf("%s %s as %s (%q): %d %s; allowed: %v (refusals are 403)", rt.method, path, m.user, m.tags, r.status, r.raw, want)
			}
		}
	}
}

// connectionNamed opens an AMQP connection as user (password pw) named
// tag, and returns its name in the API.
func connectionNamed(t *testing.T, f *fixture, user, pw, tag string) string {
	t.Helper()
	c, err := rmq.DialConfig(fmt.Sprintf("amqp://%s:%s@%s/", user, pw, f.b.Addr), rmq.Config{Properties: rmq.Table{"connection_name": tag}})
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, o := range f.expect(http.StatusOK, get, "/api/connections", nil).list(t) {
			if cp, _ := o["client_properties"].(map[string]any); cp != nil && cp["connection_name"] == tag {
				return o["name"].(string)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("connection %s not listed", tag)
	return ""
}

// TestConnectionsByTag: a user's own connection may be seen and closed by
// it whatever its management tag; another user's may be seen by
// monitoring users and administrators and closed by administrators only
// (a monitoring user could close anyone's before).
func TestConnectionsByTag(t *testing.T) {
	f := newFixture(t)
	matrixUsers(f)
	for _, tc := range []struct {
		method, whose, allowed string
	}{
		{get, "other", "adm mon"},
		{del, "other", "adm"},
		{get, "own", everyManager},
		{del, "own", everyManager},
	} {
		for _, m := range matrixTags {
			owner, pw := "guest", "guest"
			if tc.whose == "own" {
				owner, pw = m.user, "pw-"+m.user
			}
			name := connectionNamed(t, f, owner, pw, fmt.Sprintf("%s-%s-%s", tc.method, tc.whose, m.user))
			r := f.request(tc.method, "/api/connections/"+url.PathEscape(name), m.user, "pw-"+m.user, nil)
			want := allows(tc.allowed, m.user)
			if got := r.status >= 200 && r.status < 300; got != want || (!want && r.status != http.StatusForbidden) {
				t.Errorf("%s %s connection as %s (%q): %d %s; allowed: %v", tc.method, tc.whose, m.user, m.tags, r.status, r.raw, want)
			}
		}
	}
}
