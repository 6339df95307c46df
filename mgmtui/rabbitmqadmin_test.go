package mgmtui_test

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// rabbitmqadmin runs Debian's unchanged rabbitmqadmin against the
// fixture's API and returns its output.
func (f *fixture) rabbitmqadmin(args ...string) string {
	f.t.Helper()
	bin, err := exec.LookPath("rabbitmqadmin")
	if err != nil {
		f.t.Skip("rabbitmqadmin not installed (Debian package rabbitmq-server); .ci/run installs it")
	}
	u, err := url.Parse(f.http.URL)
	if err != nil {
		f.t.Fatal(err)
	}
	full := append([]string{"-H", u.Hostname(), "-P", u.Port(), "-u", "guest", "-p", "guest"}, args...)
	out, err := exec.Command(bin, full...).CombinedOutput()
	if err != nil {
		f.t.Fatalf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRabbitmqadmin drives Warren with RabbitMQ's own admin tool.
func TestRabbitmqadmin(t *testing.T) {
	f := newFixture(t)
	admin := f.rabbitmqadmin
	admin("declare", "exchange", "name=orders", "type=topic")
	admin("declare", "queue", "name=eu-orders", "durable=true", `arguments={"x-max-length": 100}`)
	admin("declare", "binding", "source=orders", "destination=eu-orders", "routing_key=eu.#")
	if out := admin("publish", "exchange=orders", "routing_key=eu.fr", "payload=bonjour"); !strings.Contains(out, "Message published") || strings.Contains(out, "NOT routed") {
		t.Fatalf("publish: %s", out)
	}
	if out := admin("-f", "tsv", "list", "queues", "name", "messages"); !strings.Contains(out, "eu-orders\t1") {
		t.Fatalf("list queues:\n%s", out)
	}
	if out := admin("get", "queue=eu-orders", "ackmode=ack_requeue_false"); !strings.Contains(out, "bonjour") || !strings.Contains(out, "eu.fr") {
		t.Fatalf("get:\n%s", out)
	}
	if out := admin("-f", "tsv", "list", "exchanges", "name", "type"); !strings.Contains(out, "orders\ttopic") || !strings.Contains(out, "amq.fanout\tfanout") {
		t.Fatalf("list exchanges:\n%s", out)
	}
	if out := admin("-f", "tsv", "list", "bindings", "source", "destination", "routing_key"); !strings.Contains(out, "orders\teu-orders\teu.#") {
		t.Fatalf("list bindings:\n%s", out)
	}
	conn := f.dial("guest", "guest", "admin-test")
	if out := admin("-f", "tsv", "list", "connections", "name", "user", "channels"); !strings.Contains(out, "guest\t0") {
		t.Fatalf("list connections:\n%s", out)
	}
	_ = conn
	admin("declare", "user", "name=ops", "password=opspw", "tags=monitoring")
	admin("declare", "permission", "vhost=/", "user=ops", "configure=^$", "write=.*", "read=.*")
	if out := admin("-f", "tsv", "list", "users", "name", "tags"); !strings.Contains(out, "ops\t") || !strings.Contains(out, "guest\t") {
		t.Fatalf("list users:\n%s", out)
	}
	if out := admin("-f", "tsv", "list", "permissions", "user", "configure"); !strings.Contains(out, "ops\t^$") {
		t.Fatalf("list permissions:\n%s", out)
	}
	if out := admin("show", "overview"); !strings.Contains(out, "3.10.8") {
		t.Fatalf("show overview:\n%s", out)
	}

	file := filepath.Join(t.TempDir(), "defs.json")
	admin("export", file)
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"eu-orders"`) || !strings.Contains(string(raw), `"ops"`) {
		t.Fatalf("exported definitions lack the queue or the user:\n%s", raw)
	}

	admin("delete", "binding", "source=orders", "destination_type=queue", "destination=eu-orders", "properties_key=eu.%23")
	admin("purge", "queue", "name=eu-orders")
	admin("delete", "queue", "name=eu-orders")
	admin("delete", "exchange", "name=orders")
	admin("delete", "user", "name=ops")
	if out := admin("-f", "tsv", "list", "queues", "name"); strings.Contains(out, "eu-orders") {
		t.Fatalf("queue still listed:\n%s", out)
	}

	// Importing the exported file brings everything back.
	admin("import", file)
	if out := admin("-f", "tsv", "list", "bindings", "source", "destination", "routing_key"); !strings.Contains(out, "orders\teu-orders\teu.#") {
		t.Fatalf("bindings after import:\n%s", out)
	}
	if out := admin("-f", "tsv", "list", "users", "name"); !strings.Contains(out, "ops") {
		t.Fatalf("users after import:\n%s", out)
	}
	if out := admin("-f", "tsv", "list", "queues", "name", "arguments.x-max-length"); !strings.Contains(out, "eu-orders\t100") {
		t.Fatalf("queue arguments after import:\n%s", out)
	}
}
