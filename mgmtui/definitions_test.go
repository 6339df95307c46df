package mgmtui_test

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"testing"
)

func TestPolicyEndpoints(t *testing.T) {
	f := newFixture(t)
	f.addUser("maker", []string{"policymaker"}, &[3]string{".*", ".*", ".*"})
	f.addUser("manager", []string{"management"}, &[3]string{".*", ".*", ".*"})
	body := map[string]any{"pattern": "^cap\\.", "definition": map[string]any{"max-length": 1}, "priority": 3, "apply-to": "queues"}
	if r := f.request(put, "/api/policies/%2F/cap", "manager", "pw", body); r.status != http.StatusForbidden {
		t.Fatalf("management user setting a policy: %d, want 403", r.status)
	}
	if r := f.request(put, "/api/policies/%2F/cap", "maker", "pw", body); r.status != http.StatusCreated {
		t.Fatalf("policymaker setting a policy: %d %s", r.status, r.raw)
	}
	f.expect(http.StatusNoContent, put, "/api/policies/%2F/cap", map[string]any{"pattern": "^cap\\.", "definition": `{"max-length": 1}`, "priority": "3", "apply-to": "queues"})
	e := f.expect(http.StatusBadRequest, put, "/api/policies/%2F/bad", map[string]any{"pattern": ".*", "definition": map[string]any{"bogus": 1}}).object(t)
	if e["reason"] == "" {
		t.Fatalf("invalid policy: %v", e)
	}
	p := f.expect(http.StatusOK, get, "/api/policies/%2F/cap", nil).object(t)
	if p["name"] != "cap" || p["vhost"] != "/" || p["apply-to"] != "queues" || p["priority"] != 3.0 || num(t, p, "definition.max-length") != 1 {
		t.Fatalf("policy = %v", p)
	}
	if n := len(f.expect(http.StatusOK, get, "/api/policies", nil).list(t)); n != 1 {
		t.Fatalf("policies: %d", n)
	}
	f.expect(http.StatusCreated, put, "/api/queues/%2F/cap.a", map[string]any{})
	q := f.expect(http.StatusOK, get, "/api/queues/%2F/cap.a", nil).object(t)
	if q["policy"] != "cap" || num(t, q, "effective_policy_definition.max-length") != 1 {
		t.Fatalf("queue under policy = %v / %v", q["policy"], q["effective_policy_definition"])
	}
	f.expect(http.StatusNoContent, del, "/api/policies/%2F/cap", nil)
	f.expect(http.StatusNotFound, del, "/api/policies/%2F/cap", nil)
	if q := f.expect(http.StatusOK, get, "/api/queues/%2F/cap.a", nil).object(t); q["policy"] != nil {
		t.Fatalf("policy after delete = %v", q["policy"])
	}
}

// TestImportRabbitMQDefinitions imports a file exported by RabbitMQ 3.10
// (rabbitmqctl export_definitions) and checks that its objects exist and
// that its user logs in with the password set in RabbitMQ.
func TestImportRabbitMQDefinitions(t *testing.T) {
	f := newFixture(t)
	raw, err := os.ReadFile("testdata/rabbitmq-3.10-definitions.json")
	if err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusNoContent, post, "/api/definitions", string(raw))
	f.expect(http.StatusOK, get, "/api/vhosts/shop", nil)
	f.expect(http.StatusOK, get, "/api/exchanges/shop/events", nil)
	q := f.expect(http.StatusOK, get, "/api/queues/shop/orders.eu", nil).object(t)
	if num(t, q, "arguments.x-max-length") != 1000 || q["policy"] != "ttl" {
		t.Fatalf("imported queue = %v", q)
	}
	if b := f.expect(http.StatusOK, get, "/api/bindings/shop/e/events/q/orders.eu", nil).list(t); len(b) != 1 || b[0]["routing_key"] != "order.eu.*" {
		t.Fatalf("imported bindings = %v", b)
	}
	if b := f.expect(http.StatusOK, get, "/api/bindings/shop/e/events/e/dlx", nil).list(t); len(b) != 1 {
		t.Fatalf("imported exchange binding = %v", b)
	}
	p := f.expect(http.StatusOK, get, "/api/permissions/shop/app", nil).object(t)
	if p["configure"] != "^(orders|events).*" {
		t.Fatalf("imported permission = %v", p)
	}
	// The user's RabbitMQ password hash works in Warren, over HTTP and AMQP.
	if r := f.request(get, "/api/whoami", "app", "app-secret", nil); r.status != http.StatusOK {
		t.Fatalf("imported user login: %d", r.status)
	}
	conn := f.dialVhostAs("app", "app-secret", "shop")
	ch := f.channel(conn)
	if _, err := ch.QueueDeclarePassive("orders.eu", true, false, false, false, nil); err != nil {
		t.Fatalf("imported user on its vhost: %v", err)
	}
	// Importing twice changes nothing.
	f.expect(http.StatusNoContent, post, "/api/definitions", string(raw))
}

func TestDefinitionsRoundTrip(t *testing.T) {
	f := newFixture(t)
	raw, err := os.ReadFile("testdata/rabbitmq-3.10-definitions.json")
	if err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusNoContent, post, "/api/definitions", string(raw))
	first := f.expect(http.StatusOK, get, "/api/definitions", nil)

	g := newFixture(t)
	g.expect(http.StatusNoContent, post, "/api/definitions", string(first.raw))
	second := g.expect(http.StatusOK, get, "/api/definitions", nil)
	var a, b map[string]any
	first.decode(t, &a)
	second.decode(t, &b)
	for _, k := range []string{"vhosts", "permissions", "policies", "queues", "exchanges", "bindings"} {
		if !reflect.DeepEqual(a[k], b[k]) {
			t.Errorf("%s differ after a round trip:\n%v\n%v", k, a[k], b[k])
		}
	}
	users := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for _, u := range m["users"].([]any) {
			um := u.(map[string]any)
			out[um["name"].(string)] = um["tags"]
		}
		return out
	}
	if !reflect.DeepEqual(users(a), users(b)) {
		t.Errorf("users differ: %v vs %v", users(a), users(b))
	}

	// A per-vhost export has no vhost fields and imports into another vhost.
	var perVhost map[string]any
	f.expect(http.StatusOK, get, "/api/definitions/shop", nil).decode(t, &perVhost)
	if _, ok := perVhost["users"]; ok {
		t.Fatalf("per-vhost export has users: %v", perVhost)
	}
	g.expect(http.StatusCreated, put, "/api/vhosts/copy", nil)
	js, _ := json.Marshal(perVhost)
	g.expect(http.StatusNoContent, post, "/api/definitions/copy", string(js))
	g.expect(http.StatusOK, get, "/api/queues/copy/orders.eu", nil)
	g.expect(http.StatusBadRequest, post, "/api/definitions", "{broken")
}
