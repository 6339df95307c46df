package main

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/mgmtui"
)

// ctl runs warrenctl against a broker's management API.
type ctl struct {
	t   *testing.T
	url string
}

func (c ctl) run(args ...string) (string, error) {
	var out bytes.Buffer
	err := run(append([]string{"--url", c.url}, args...), &out)
	return out.String(), err
}

func (c ctl) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("warrenctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func newCtl(t *testing.T) (ctl, *brokertest.Broker) {
	b := brokertest.Start(t)
	api := mgmtui.New(b.Server, mgmtui.Options{})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		api.Close()
	})
	return ctl{t: t, url: srv.URL}, b
}

func TestWarrenctl(t *testing.T) {
	c, b := newCtl(t)
	c.must("declare", "exchange", "events", "topic")
	c.must("declare", "queue", "audit", "--arguments", `{"x-max-length": 5}`)
	c.must("declare", "binding", "events", "audit", "user.#")
	c.must("declare", "queue", "scratch", "--durable=false")

	if out := c.must("list", "queues"); !strings.Contains(out, "audit") || !strings.Contains(out, "scratch") {
		t.Fatalf("list queues:\n%s", out)
	}
	if out := c.must("list", "exchanges"); !strings.Contains(out, "events") || !strings.Contains(out, "topic") {
		t.Fatalf("list exchanges:\n%s", out)
	}
	if out := c.must("list", "bindings"); !strings.Contains(out, "user.#") {
		t.Fatalf("list bindings:\n%s", out)
	}
	if out := c.must("list", "users"); !strings.Contains(out, "guest") || !strings.Contains(out, "administrator") {
		t.Fatalf("list users:\n%s", out)
	}
	c.must("list", "connections")

	q := b.Server.Vhost("/").Queue("audit")
	if q == nil || fmt.Sprint(q.Info().Arguments["x-max-length"]) != "5" {
		t.Fatalf("declared queue: %+v", q)
	}
	if routed, err := b.Server.Vhost("/").Publish("events", "user.login", amqp.Properties{}, []byte("x")); err != nil || !routed {
		t.Fatalf("publish through the declared binding: %v %v", routed, err)
	}
	if ready, _, _ := q.Counts(); ready != 1 {
		t.Fatalf("before purge: %d", ready)
	}
	c.must("purge", "queue", "audit")
	if ready, _, _ := q.Counts(); ready != 0 {
		t.Fatalf("after purge: %d", ready)
	}

	file := filepath.Join(t.TempDir(), "defs.json")
	c.must("export", file)
	c.must("delete", "queue", "audit")
	c.must("delete", "exchange", "events")
	if b.Server.Vhost("/").Queue("audit") != nil {
		t.Fatal("queue not deleted")
	}
	c.must("import", file)
	if b.Server.Vhost("/").Queue("audit") == nil || b.Server.Vhost("/").Exchange("events") == nil {
		t.Fatal("import did not restore the queue and exchange")
	}
	if raw, _ := os.ReadFile(file); !strings.Contains(string(raw), `"audit"`) {
		t.Fatalf("export:\n%s", raw)
	}

	if _, err := c.run("declare", "exchange", "bad", "nosuchtype"); err == nil {
		t.Fatal("declaring an exchange of an unknown type succeeded")
	}
	if _, err := c.run("--password", "wrong", "list", "queues"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := c.run("frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
}
