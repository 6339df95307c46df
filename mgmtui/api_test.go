package mgmtui_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	f.addUser("plain", nil, nil)
	f.addUser("manager", []string{"management"}, &[3]string{".*", ".*", ".*"})
	f.addUser("watcher", []string{"monitoring"}, nil)

	r := f.request(get, "/api/overview", "", "", nil)
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no credentials: %d %v, want 401 with WWW-Authenticate", r.status, r.header)
	}
	if r := f.request(get, "/api/overview", "guest", "wrong", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", r.status)
	}
	if e := f.request(get, "/api/overview", "guest", "wrong", nil).object(t); e["error"] != "not_authorised" {
		t.Fatalf("error body = %v", e)
	}
	for _, c := range []struct {
		user, path string
		want       int
	}{
		{"plain", "/api/overview", http.StatusForbidden}, // no management tag
		{"manager", "/api/overview", http.StatusOK},
		{"manager", "/api/queues", http.StatusOK},
		{"manager", "/api/users", http.StatusForbidden}, // administrator only
		{"manager", "/api/nodes", http.StatusForbidden}, // monitoring only
		{"watcher", "/api/nodes", http.StatusOK},
		{"watcher", "/api/users", http.StatusForbidden},
		{"guest", "/api/users", http.StatusOK},
		{"guest", "/api/whoami", http.StatusOK},
	} {
		if r := f.request(get, c.path, c.user, "pw", nil); c.user != "guest" && r.status != c.want {
			t.Errorf("%s GET %s = %d %s, want %d", c.user, c.path, r.status, r.raw, c.want)
		}
		if c.user == "guest" {
			if r := f.as(get, c.path, nil); r.status != c.want {
				t.Errorf("guest GET %s = %d, want %d", c.path, r.status, c.want)
			}
		}
	}
	who := f.expect(http.StatusOK, get, "/api/whoami", nil).object(t)
	if who["name"] != "guest" || fmt.Sprint(who["tags"]) != "[administrator]" {
		t.Fatalf("whoami = %v", who)
	}
	if r := f.as(get, "/api/nope", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown path = %d, want 404", r.status)
	}
}

const (
	get  = http.MethodGet
	put  = http.MethodPut
	post = http.MethodPost
	del  = http.MethodDelete
)

func TestOverviewAndNodes(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, put, "/api/queues/%2F/q1", map[string]any{"durable": true})
	o := f.expect(http.StatusOK, get, "/api/overview", nil).object(t)
	for _, k := range []string{"object_totals", "queue_totals", "message_stats", "listeners", "node", "cluster_name", "management_version", "rabbitmq_version", "exchange_types"} {
		if _, ok := o[k]; !ok {
			t.Errorf("overview lacks %q", k)
		}
	}
	if num(t, o, "object_totals.queues") != 1 || num(t, o, "object_totals.exchanges") != 6 {
		t.Fatalf("object_totals = %v", o["object_totals"])
	}
	listeners := o["listeners"].([]any)
	if len(listeners) == 0 || listeners[0].(map[string]any)["protocol"] != "amqp" {
		t.Fatalf("listeners = %v", listeners)
	}
	nodes := f.expect(http.StatusOK, get, "/api/nodes", nil).list(t)
	if len(nodes) != 1 || nodes[0]["name"] != "warren@test" || nodes[0]["running"] != true {
		t.Fatalf("nodes = %v", nodes)
	}
	f.expect(http.StatusOK, get, "/api/nodes/warren@test", nil)
	f.expect(http.StatusNotFound, get, "/api/nodes/other", nil)
}

func TestQueueEndpoints(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, put, "/api/queues/%2F/jobs", map[string]any{"durable": true, "auto_delete": false, "arguments": map[string]any{"x-max-length": 10}})
	f.expect(http.StatusNoContent, put, "/api/queues/%2F/jobs", map[string]any{"durable": "true", "arguments": map[string]any{"x-max-length": 10}})
	e := f.expect(http.StatusBadRequest, put, "/api/queues/%2F/jobs", map[string]any{"durable": false}).object(t)
	if !strings.Contains(fmt.Sprint(e["reason"]), "inequivalent arg 'durable'") {
		t.Fatalf("inequivalent redeclare: %v", e)
	}
	f.expect(http.StatusBadRequest, put, "/api/queues/%2F/bad", map[string]any{"arguments": map[string]any{"x-max-length": "ten"}})
	f.expect(http.StatusNotFound, put, "/api/queues/nohost/q", map[string]any{})

	q := f.expect(http.StatusOK, get, "/api/queues/%2F/jobs", nil).object(t)
	for k, want := range map[string]any{"name": "jobs", "vhost": "/", "durable": true, "auto_delete": false, "exclusive": false, "messages": 0.0, "messages_ready": 0.0, "messages_unacknowledged": 0.0, "consumers": 0.0, "type": "classic"} {
		if q[k] != want {
			t.Errorf("queue %s = %v, want %v", k, q[k], want)
		}
	}
	if num(t, q, "arguments.x-max-length") != 10 {
		t.Errorf("arguments = %v", q["arguments"])
	}

	for i := range 3 {
		r := f.expect(http.StatusOK, post, "/api/exchanges/%2F/amq.default/publish", map[string]any{
			"routing_key": "jobs", "payload": fmt.Sprintf("job %d", i), "payload_encoding": "string",
			"properties": map[string]any{"delivery_mode": 2, "headers": map[string]any{"n": i}},
		}).object(t)
		if r["routed"] != true {
			t.Fatalf("publish = %v", r)
		}
	}
	if r := f.expect(http.StatusOK, post, "/api/exchanges/%2F/amq.default/publish", map[string]any{"routing_key": "nowhere", "payload": "x", "payload_encoding": "string", "properties": map[string]any{}}).object(t); r["routed"] != false {
		t.Fatalf("unroutable publish = %v", r)
	}
	if got := num(t, f.expect(http.StatusOK, get, "/api/queues/%2F/jobs", nil).object(t), "messages"); got != 3 {
		t.Fatalf("messages = %v, want 3", got)
	}

	msgs := f.expect(http.StatusOK, post, "/api/queues/%2F/jobs/get", map[string]any{"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000}).list(t)
	if len(msgs) != 2 || msgs[0]["payload"] != "job 0" || msgs[0]["payload_encoding"] != "string" || msgs[0]["message_count"] != 2.0 || msgs[0]["redelivered"] != false {
		t.Fatalf("get = %v", msgs)
	}
	props := msgs[0]["properties"].(map[string]any)
	if props["delivery_mode"] != 2.0 || num(t, props, "headers.n") != 0 {
		t.Fatalf("properties = %v", props)
	}
	again := f.expect(http.StatusOK, post, "/api/queues/%2F/jobs/get", map[string]any{"count": "1", "ackmode": "ack_requeue_false", "encoding": "base64"}).list(t)
	if len(again) != 1 || again[0]["redelivered"] != true || again[0]["payload"] != "am9iIDA=" || again[0]["payload_encoding"] != "base64" {
		t.Fatalf("second get = %v", again)
	}
	if got := num(t, f.expect(http.StatusOK, get, "/api/queues/%2F/jobs", nil).object(t), "messages"); got != 2 {
		t.Fatalf("after ack_requeue_false messages = %v, want 2", got)
	}
	f.expect(http.StatusBadRequest, post, "/api/queues/%2F/jobs/get", map[string]any{"count": 1, "ackmode": "bogus"})
	trunc := f.expect(http.StatusOK, post, "/api/queues/%2F/jobs/get", map[string]any{"count": 1, "ackmode": "ack_requeue_true", "truncate": 3}).list(t)
	if trunc[0]["payload"] != "job" || trunc[0]["payload_bytes"] != 5.0 {
		t.Fatalf("truncated get = %v", trunc)
	}

	f.expect(http.StatusNoContent, del, "/api/queues/%2F/jobs/contents", nil)
	if got := num(t, f.expect(http.StatusOK, get, "/api/queues/%2F/jobs", nil).object(t), "messages_ready"); got != 0 {
		t.Fatalf("after purge messages_ready = %v", got)
	}
	bindings := f.expect(http.StatusOK, get, "/api/queues/%2F/jobs/bindings", nil).list(t)
	if len(bindings) != 1 || bindings[0]["source"] != "" || bindings[0]["routing_key"] != "jobs" {
		t.Fatalf("queue bindings = %v", bindings)
	}
	f.expect(http.StatusNoContent, del, "/api/queues/%2F/jobs", nil)
	f.expect(http.StatusNotFound, get, "/api/queues/%2F/jobs", nil)
	f.expect(http.StatusNotFound, del, "/api/queues/%2F/jobs", nil)
}

func TestQueueDeleteConditions(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, put, "/api/queues/%2F/full", map[string]any{})
	f.expect(http.StatusOK, post, "/api/exchanges/%2F/amq.default/publish", map[string]any{"routing_key": "full", "payload": "x", "properties": map[string]any{}})
	f.expect(http.StatusBadRequest, del, "/api/queues/%2F/full?if-empty=true", nil)
	f.expect(http.StatusNoContent, del, "/api/queues/%2F/full?if-unused=true", nil)
}

func TestExchangeAndBindingEndpoints(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, put, "/api/exchanges/%2F/logs", map[string]any{"type": "topic", "durable": true})
	f.expect(http.StatusNoContent, put, "/api/exchanges/%2F/logs", map[string]any{"type": "topic"})
	f.expect(http.StatusBadRequest, put, "/api/exchanges/%2F/logs", map[string]any{"type": "fanout"})
	f.expect(http.StatusCreated, put, "/api/exchanges/%2F/audit", map[string]any{"type": "fanout", "durable": false})
	f.expect(http.StatusBadRequest, put, "/api/exchanges/%2F/x", map[string]any{})
	f.expect(http.StatusCreated, put, "/api/queues/%2F/errors", map[string]any{})

	r := f.expect(http.StatusCreated, post, "/api/bindings/%2F/e/logs/q/errors", map[string]any{"routing_key": "*.error", "arguments": map[string]any{}})
	if loc := r.header.Get("Location"); !strings.HasSuffix(loc, "/api/bindings/%2F/e/logs/q/errors/%252A.error") {
		t.Fatalf("Location = %q", loc)
	}
	f.expect(http.StatusCreated, post, "/api/bindings/%2F/e/logs/e/audit", map[string]any{"routing_key": "#"})
	f.expect(http.StatusCreated, post, "/api/bindings/%2F/e/logs/q/errors", map[string]any{"routing_key": "", "arguments": map[string]any{"x-tag": "a"}})
	f.expect(http.StatusNotFound, post, "/api/bindings/%2F/e/missing/q/errors", map[string]any{})

	between := f.expect(http.StatusOK, get, "/api/bindings/%2F/e/logs/q/errors", nil).list(t)
	if len(between) != 2 {
		t.Fatalf("bindings between = %v", between)
	}
	var withArgs map[string]any
	for _, b := range between {
		if b["routing_key"] == "" {
			withArgs = b
		} else if b["properties_key"] != "%2A.error" || b["destination_type"] != "queue" { // as RabbitMQ quotes it
			t.Fatalf("binding = %v", b)
		}
	}
	pk := withArgs["properties_key"].(string)
	if !strings.HasPrefix(pk, "~") || len(pk) < 2 {
		t.Fatalf("properties_key with arguments = %q", pk)
	}
	f.expect(http.StatusOK, get, "/api/bindings/%2F/e/logs/q/errors/"+url.PathEscape(pk), nil)

	src := f.expect(http.StatusOK, get, "/api/exchanges/%2F/logs/bindings/source", nil).list(t)
	if len(src) != 3 {
		t.Fatalf("source bindings = %v", src)
	}
	dst := f.expect(http.StatusOK, get, "/api/exchanges/%2F/audit/bindings/destination", nil).list(t)
	if len(dst) != 1 || dst[0]["destination_type"] != "exchange" || dst[0]["source"] != "logs" {
		t.Fatalf("destination bindings = %v", dst)
	}

	pub := f.expect(http.StatusOK, post, "/api/exchanges/%2F/logs/publish", map[string]any{"routing_key": "db.error", "payload": "ZGlzayBmdWxs", "payload_encoding": "base64", "properties": map[string]any{}}).object(t)
	if pub["routed"] != true {
		t.Fatalf("publish = %v", pub)
	}
	ex := f.expect(http.StatusOK, get, "/api/exchanges/%2F/logs", nil).object(t)
	if ex["type"] != "topic" || ex["durable"] != true || num(t, ex, "message_stats.publish_in") != 1 || num(t, ex, "message_stats.publish_out") != 1 {
		t.Fatalf("exchange = %v", ex)
	}
	got := f.expect(http.StatusOK, post, "/api/queues/%2F/errors/get", map[string]any{"count": 1, "ackmode": "ack_requeue_false"}).list(t)
	if len(got) != 1 || got[0]["payload"] != "disk full" || got[0]["routing_key"] != "db.error" || got[0]["exchange"] != "logs" {
		t.Fatalf("get = %v", got)
	}

	f.expect(http.StatusNoContent, del, "/api/bindings/%2F/e/logs/q/errors/%252A.error", nil)
	f.expect(http.StatusNotFound, del, "/api/bindings/%2F/e/logs/q/errors/%252A.error", nil)
	f.expect(http.StatusNoContent, del, "/api/bindings/%2F/e/logs/e/audit/%2523", nil)
	all := f.expect(http.StatusOK, get, "/api/bindings/%2F", nil).list(t)
	if len(all) != 2 { // the default binding of "errors" and the one with arguments
		t.Fatalf("bindings = %v", all)
	}
	f.expect(http.StatusBadRequest, del, "/api/exchanges/%2F/logs?if-unused=true", nil)
	f.expect(http.StatusNoContent, del, "/api/exchanges/%2F/logs", nil)
	f.expect(http.StatusNotFound, get, "/api/exchanges/%2F/logs", nil)
	f.expect(http.StatusForbidden, del, "/api/exchanges/%2F/amq.direct", nil)

	list := f.expect(http.StatusOK, get, "/api/exchanges/%2F", nil).list(t)
	if len(list) != 7 || list[0]["name"] != "" || list[6]["name"] != "audit" {
		t.Fatalf("exchanges = %v", list)
	}
}

func TestConnectionsChannelsConsumers(t *testing.T) {
	f := newFixture(t)
	conn := f.dial("guest", "guest", "billing-worker")
	ch := f.channel(conn)
	if _, err := ch.QueueDeclare("work", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(7, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("work", "ctag-1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	var c map[string]any
	eventually(t, "the connection to be listed", func() bool {
		conns := f.expect(http.StatusOK, get, "/api/connections/", nil).list(t) // trailing slash as amqp091-go sends it
		if len(conns) == 1 {
			c = conns[0]
		}
		return len(conns) == 1
	})
	props := c["client_properties"].(map[string]any)
	if props["connection_name"] != "billing-worker" || c["user"] != "guest" || c["vhost"] != "/" || c["channels"] != 1.0 || c["protocol"] != "AMQP 0-9-1" {
		t.Fatalf("connection = %v", c)
	}
	name := c["name"].(string)
	f.expect(http.StatusOK, get, "/api/connections/"+url.PathEscape(name), nil)

	chans := f.expect(http.StatusOK, get, "/api/connections/"+url.PathEscape(name)+"/channels", nil).list(t)
	if len(chans) != 1 || chans[0]["number"] != 1.0 || chans[0]["consumer_count"] != 1.0 || chans[0]["prefetch_count"] != 7.0 {
		t.Fatalf("channels = %v", chans)
	}
	f.expect(http.StatusOK, get, "/api/channels/"+url.PathEscape(chans[0]["name"].(string)), nil)
	cons := f.expect(http.StatusOK, get, "/api/consumers/%2F", nil).list(t)
	if len(cons) != 1 || cons[0]["consumer_tag"] != "ctag-1" || cons[0]["ack_required"] != true || cons[0]["queue"].(map[string]any)["name"] != "work" {
		t.Fatalf("consumers = %v", cons)
	}
	q := f.expect(http.StatusOK, get, "/api/queues/%2F/work", nil).object(t)
	if q["consumers"] != 1.0 || len(q["consumer_details"].([]any)) != 1 {
		t.Fatalf("queue consumers = %v", q)
	}

	closed := conn.NotifyClose(make(chan *rmq.Error, 1))
	f.expect(http.StatusNoContent, del, "/api/connections/"+url.PathEscape(name), nil)
	err := <-closed
	if err == nil || err.Code != rmq.ConnectionForced {
		t.Fatalf("close = %v, want 320 CONNECTION_FORCED", err)
	}
	eventually(t, "the closed connection to go", func() bool {
		return f.as(get, "/api/connections/"+url.PathEscape(name), nil).status == http.StatusNotFound
	})
}

func TestListPagingSortingFiltering(t *testing.T) {
	f := newFixture(t)
	for i := range 25 {
		f.expect(http.StatusCreated, put, fmt.Sprintf("/api/queues/%%2F/q%02d", i), map[string]any{"durable": false})
	}
	f.expect(http.StatusCreated, put, "/api/queues/%2F/other", map[string]any{"durable": false})
	for range 3 {
		f.expect(http.StatusOK, post, "/api/exchanges/%2F/amq.default/publish", map[string]any{"routing_key": "q07", "payload": "x", "properties": map[string]any{}})
	}

	var page struct {
		FilteredCount int              `json:"filtered_count"`
		ItemCount     int              `json:"item_count"`
		Items         []map[string]any `json:"items"`
		Page          int              `json:"page"`
		PageCount     int              `json:"page_count"`
		PageSize      int              `json:"page_size"`
		TotalCount    int              `json:"total_count"`
	}
	f.expect(http.StatusOK, get, "/api/queues/%2F?page=2&page_size=10&name=q&use_regex=false", nil).decode(t, &page)
	if page.FilteredCount != 25 || page.TotalCount != 26 || page.ItemCount != 10 || page.Page != 2 || page.PageCount != 3 || page.PageSize != 10 || page.Items[0]["name"] != "q10" {
		t.Fatalf("page = %+v", page)
	}
	f.expect(http.StatusOK, get, "/api/queues?page=1&page_size=5&name=%5Eq0%5B0-2%5D%24&use_regex=true", nil).decode(t, &page)
	if page.FilteredCount != 3 || page.Items[2]["name"] != "q02" {
		t.Fatalf("regex page = %+v", page)
	}
	f.expect(http.StatusOK, get, "/api/queues?page=1&page_size=2&sort=messages&sort_reverse=true", nil).decode(t, &page)
	if page.Items[0]["name"] != "q07" {
		t.Fatalf("sorted by messages: first = %v", page.Items[0]["name"])
	}
	f.expect(http.StatusOK, get, "/api/queues?page=1&page_size=3&sort=name&sort_reverse=true", nil).decode(t, &page)
	if page.Items[0]["name"] != "q24" || page.Items[2]["name"] != "q22" {
		t.Fatalf("reverse by name = %v, %v", page.Items[0]["name"], page.Items[1]["name"])
	}
	cols := f.expect(http.StatusOK, get, "/api/queues?columns=name,messages,message_stats.publish", nil).list(t)
	if len(cols) != 26 || len(cols[0]) != 3 {
		t.Fatalf("columns = %v", cols[0])
	}
	f.expect(http.StatusBadRequest, get, "/api/queues?page=1&page_size=501", nil)
	f.expect(http.StatusBadRequest, get, "/api/queues?page=9&page_size=10", nil)
	f.expect(http.StatusBadRequest, get, "/api/queues?page=1&name=(&use_regex=true", nil)
}

func TestVhostsUsersPermissions(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, put, "/api/vhosts/staging", nil)
	f.expect(http.StatusNoContent, put, "/api/vhosts/staging", nil)
	v := f.expect(http.StatusOK, get, "/api/vhosts/staging", nil).object(t)
	if v["name"] != "staging" || v["messages"] != 0.0 {
		t.Fatalf("vhost = %v", v)
	}
	// The creating user gets full permissions on the new vhost.
	p := f.expect(http.StatusOK, get, "/api/permissions/staging/guest", nil).object(t)
	if p["configure"] != ".*" || p["write"] != ".*" || p["read"] != ".*" {
		t.Fatalf("creator's permission = %v", p)
	}

	f.expect(http.StatusBadRequest, put, "/api/users/carol", map[string]any{"tags": "management"})
	f.expect(http.StatusCreated, put, "/api/users/carol", map[string]any{"password": "s3cret", "tags": "management,policymaker"})
	u := f.expect(http.StatusOK, get, "/api/users/carol", nil).object(t)
	if fmt.Sprint(u["tags"]) != "[management policymaker]" || u["hashing_algorithm"] != "rabbit_password_hashing_sha256" || u["password_hash"] == "" {
		t.Fatalf("user = %v", u)
	}
	f.expect(http.StatusNoContent, put, "/api/users/carol", map[string]any{"tags": []any{"management"}}) // keeps the password
	if r := f.request(get, "/api/whoami", "carol", "s3cret", nil); r.status != http.StatusOK {
		t.Fatalf("carol login = %d", r.status)
	}
	// A password hash from RabbitMQ's definitions: the password is "guest".
	f.expect(http.StatusCreated, put, "/api/users/imported", map[string]any{"password_hash": "Vy7JZTP0d+j9B6mdhiqCgNPO+4GC+TIUk2LrCJ1P6yPrxPcc", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "management"})
	f.expect(http.StatusBadRequest, put, "/api/permissions/staging/nobody", map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	f.expect(http.StatusBadRequest, put, "/api/permissions/staging/carol", map[string]any{"configure": "(", "write": ".*", "read": ".*"})
	f.expect(http.StatusCreated, put, "/api/permissions/staging/carol", map[string]any{"configure": "^c", "write": "^w", "read": "^r"})
	f.expect(http.StatusNoContent, put, "/api/permissions/staging/carol", map[string]any{"configure": "^c", "write": "^w", "read": ".*"})
	perms := f.expect(http.StatusOK, get, "/api/users/carol/permissions", nil).list(t)
	if len(perms) != 1 || perms[0]["vhost"] != "staging" || perms[0]["read"] != ".*" {
		t.Fatalf("carol's permissions = %v", perms)
	}
	if n := len(f.expect(http.StatusOK, get, "/api/vhosts/staging/permissions", nil).list(t)); n != 2 {
		t.Fatalf("staging permissions: %d, want 2", n)
	}
	// carol (management) sees only the vhosts she has permissions on.
	r := f.request(get, "/api/vhosts", "carol", "s3cret", nil)
	if vs := r.list(t); len(vs) != 1 || vs[0]["name"] != "staging" {
		t.Fatalf("carol's vhosts = %v", vs)
	}
	if r := f.request(get, "/api/queues/%2F", "carol", "s3cret", nil); r.status != http.StatusForbidden {
		t.Fatalf("carol on / = %d, want 403", r.status)
	}

	// Deleting a vhost closes its connections and removes its objects.
	f.expect(http.StatusCreated, put, "/api/queues/staging/q", map[string]any{})
	conn := f.dialVhost("staging")
	closed := conn.NotifyClose(make(chan *rmq.Error, 1))
	f.expect(http.StatusNoContent, del, "/api/vhosts/staging", nil)
	if err := <-closed; err == nil || err.Code != rmq.ConnectionForced {
		t.Fatalf("connection on a deleted vhost: %v", err)
	}
	f.expect(http.StatusNotFound, get, "/api/vhosts/staging", nil)
	f.expect(http.StatusNotFound, get, "/api/queues/staging/q", nil)
	f.expect(http.StatusNotFound, get, "/api/permissions/staging/carol", nil)

	f.expect(http.StatusNoContent, del, "/api/users/carol", nil)
	f.expect(http.StatusNotFound, del, "/api/users/carol", nil)
	f.expect(http.StatusNoContent, post, "/api/users/bulk-delete", map[string]any{"users": []any{"imported"}})
	if n := len(f.expect(http.StatusOK, get, "/api/users", nil).list(t)); n != 1 {
		t.Fatalf("users left: %d, want 1 (guest)", n)
	}
}

func (f *fixture) dialVhost(vhost string) *rmq.Connection {
	f.t.Helper()
	c, err := rmq.Dial(f.b.URL + url.PathEscape(vhost))
	if err != nil {
		f.t.Fatalf("dial %s: %v", vhost, err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

func TestHealthChecks(t *testing.T) {
	f := newFixture(t)
	if r := f.expect(http.StatusOK, get, "/api/health/checks/alarms", nil).object(t); r["status"] != "ok" {
		t.Fatalf("alarms = %v", r)
	}
	f.expect(http.StatusOK, get, "/api/health/checks/virtual-hosts", nil)
	_, port, _ := strings.Cut(f.b.Addr, ":")
	f.expect(http.StatusOK, get, "/api/health/checks/port-listener/"+port, nil)
	if r := f.expect(http.StatusServiceUnavailable, get, "/api/health/checks/port-listener/1", nil).object(t); r["status"] != "failed" {
		t.Fatalf("port-listener = %v", r)
	}
	if r := f.expect(http.StatusOK, get, "/api/aliveness-test/%2F", nil).object(t); r["status"] != "ok" {
		t.Fatalf("aliveness = %v", r)
	}
	f.expect(http.StatusNotFound, get, "/api/aliveness-test/none", nil)

	f.b.Server.SetMemoryLimit(1) // every byte is too many: the memory alarm goes off
	r := f.expect(http.StatusServiceUnavailable, get, "/api/health/checks/alarms", nil).object(t)
	if r["status"] != "failed" || len(r["alarms"].([]any)) != 1 {
		t.Fatalf("alarms in effect = %v", r)
	}
	f.b.Server.SetMemoryLimit(0)
	f.expect(http.StatusOK, get, "/api/health/checks/alarms", nil)
}

func TestMessageRatesAndCounts(t *testing.T) {
	f := newFixture(t)
	conn := f.dial("guest", "guest", "rates")
	ch := f.channel(conn)
	if _, err := ch.QueueDeclare("r", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 100))
	for range 50 {
		if err := ch.Publish("", "r", false, false, rmq.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Publish("", "nowhere", true, false, rmq.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for range 51 {
		<-confirms
	}
	for range 10 {
		if _, ok, err := ch.Get("r", false); err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
	}
	if err := ch.Ack(10, true); err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	eventually(t, "publish rate and ack count in the overview", func() bool {
		o = f.expect(http.StatusOK, get, "/api/overview", nil).object(t)
		ms := o["message_stats"].(map[string]any)
		return ms["ack"] == 10.0 && num(t, o, "message_stats.publish_details.rate") > 0
	})
	for path, want := range map[string]float64{
		"message_stats.publish": 51, "message_stats.confirm": 51, "message_stats.get": 10,
		"message_stats.deliver_get": 10, "message_stats.return_unroutable": 1, "queue_totals.messages": 40,
	} {
		if got := num(t, o, path); got != want {
			t.Errorf("overview %s = %v, want %v", path, got, want)
		}
	}
	q := f.expect(http.StatusOK, get, "/api/queues/%2F/r", nil).object(t)
	if num(t, q, "message_stats.publish") != 50 || num(t, q, "message_stats.get") != 10 || num(t, q, "message_stats.ack") != 10 {
		t.Fatalf("queue message_stats = %v", q["message_stats"])
	}
	conns := f.expect(http.StatusOK, get, "/api/connections", nil).list(t)
	if num(t, conns[0], "message_stats.publish") != 51 || num(t, conns[0], "message_stats.get") != 10 {
		t.Fatalf("connection message_stats = %v", conns[0]["message_stats"])
	}
	chans := f.expect(http.StatusOK, get, "/api/channels", nil).list(t)
	if num(t, chans[0], "message_stats.publish") != 51 {
		t.Fatalf("channel message_stats = %v", chans[0]["message_stats"])
	}
	// Counters outlive the channel: the vhost keeps them.
	if err := conn.Close(); err != nil && !errors.Is(err, rmq.ErrClosed) {
		t.Fatal(err)
	}
	eventually(t, "the connection to go", func() bool {
		return len(f.expect(http.StatusOK, get, "/api/connections", nil).list(t)) == 0
	})
	v := f.expect(http.StatusOK, get, "/api/vhosts/%2F", nil).object(t)
	if num(t, v, "message_stats.publish") != 51 || num(t, v, "message_stats.ack") != 10 {
		t.Fatalf("vhost message_stats after close = %v", v["message_stats"])
	}
}

func TestPrometheusMetrics(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, put, "/api/queues/%2F/m", map[string]any{})
	for range 3 {
		f.expect(http.StatusOK, post, "/api/exchanges/%2F/amq.default/publish", map[string]any{"routing_key": "m", "payload": "x", "properties": map[string]any{}})
	}
	conn := f.dial("guest", "guest", "prom")
	f.channel(conn)
	r := f.request(get, "/metrics", "", "", nil) // no credentials needed
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %v", r.status, r.header)
	}
	text := string(r.raw)
	for _, want := range []string{
		`rabbitmq_queue_messages{vhost="/",queue="m"} 3`,
		`rabbitmq_queue_messages_ready{vhost="/",queue="m"} 3`,
		`rabbitmq_queue_messages_unacked{vhost="/",queue="m"} 0`,
		`rabbitmq_queue_consumers{vhost="/",queue="m"} 0`,
		"rabbitmq_connections 1", "rabbitmq_channels 1",
		"# TYPE rabbitmq_global_messages_received_total counter",
		"rabbitmq_global_messages_delivered_total 0",
		"rabbitmq_global_messages_acknowledged_total 0",
		"rabbitmq_global_messages_confirmed_total 0",
		"rabbitmq_global_messages_routed_total",
		"rabbitmq_process_resident_memory_bytes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestErrorsAreJSON(t *testing.T) {
	f := newFixture(t)
	e := f.expect(http.StatusNotFound, get, "/api/queues/%2F/missing", nil).object(t)
	if e["error"] == nil || e["reason"] == nil {
		t.Fatalf("404 body = %v", e)
	}
	e = f.expect(http.StatusBadRequest, put, "/api/queues/%2F/q", "{not json").object(t)
	if e["error"] != "bad_request" {
		t.Fatalf("400 body = %v", e)
	}
	f.expect(http.StatusForbidden, put, "/api/queues/%2F/amq.reserved", map[string]any{})
}

// TestTenThousandQueues lists page 1 of 10,000 queues; only the page is
// rendered, so the answer's cost does not grow with the queue count.
func TestTenThousandQueues(t *testing.T) {
	f := newFixture(t)
	v := f.b.Server.Vhost("/")
	for i := range 10000 {
		if _, err := v.DeclareQueue(broker.QueueSpec{Name: fmt.Sprintf("q%05d", i)}, false); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var page struct {
		TotalCount int              `json:"total_count"`
		Items      []map[string]any `json:"items"`
	}
	f.expect(http.StatusOK, get, "/api/queues/%2F?page=1&page_size=100", nil).decode(t, &page)
	took := time.Since(start)
	t.Logf("page 1 of 10,000 queues in %v", took)
	if took >= time.Second {
		t.Errorf("page 1 of 10,000 queues took %v, want under 1 s", took)
	}
	if page.TotalCount != 10000 || len(page.Items) != 100 || page.Items[0]["name"] != "q00000" {
		t.Fatalf("page: total %d, %d items", page.TotalCount, len(page.Items))
	}
	f.expect(http.StatusOK, get, "/api/queues/%2F?page=2&page_size=500&name=q09&sort=messages", nil).decode(t, &page)
	if page.TotalCount != 10000 || len(page.Items) != 0 && page.Items[0]["name"] == nil {
		t.Fatalf("filtered sorted page: %+v", page.TotalCount)
	}
}
