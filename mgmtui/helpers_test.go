package mgmtui_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/mgmtui"
)

// fixture is a broker with its management API on an httptest server.
type fixture struct {
	t    *testing.T
	b    *brokertest.Broker
	api  *mgmtui.API
	http *httptest.Server
}

func newFixture(t *testing.T, opts ...brokertest.Option) *fixture {
	t.Helper()
	b := brokertest.Start(t, opts...)
	f := &fixture{t: t, b: b}
	f.api = mgmtui.New(b.Server, mgmtui.Options{Node: "warren@test", AMQPAddr: b.Addr, SampleInterval: 20 * time.Millisecond})
	f.http = httptest.NewServer(f.api)
	t.Cleanup(func() {
		f.http.Close()
		f.api.Close()
	})
	return f
}

// response is a decoded API response.
type response struct {
	status int
	header http.Header
	raw    []byte
}

// json decodes the body into v.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("decode %q: %v", r.raw, err)
	}
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	r.decode(t, &l)
	return l
}

// request sends a request as user:pass (no credentials when user is "").
func (f *fixture) request(method, path, user, pass string, body any) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, f.http.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// as sends a request as guest.
func (f *fixture) as(method, path string, body any) response {
	f.t.Helper()
	return f.request(method, path, "guest", "guest", body)
}

// expect sends a request as guest and checks the status.
func (f *fixture) expect(status int, method, path string, body any) response {
	f.t.Helper()
	r := f.as(method, path, body)
	if r.status != status {
		f.t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, r.raw, status)
	}
	return r
}

// addUser creates a user with tags and, when perms is not nil, permissions
// (configure, write, read) on "/".
func (f *fixture) addUser(name string, tags []string, perms *[3]string) {
	f.t.Helper()
	if err := f.b.Server.PutUser(broker.User{Name: name, PasswordHash: broker.HashPassword("pw"), Tags: tags}); err != nil {
		f.t.Fatal(err)
	}
	if perms != nil {
		if err := f.b.Server.SetPermission(broker.Permission{User: name, Vhost: "/", Configure: perms[0], Write: perms[1], Read: perms[2]}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// dial opens an AMQP connection as user with a connection name.
func (f *fixture) dial(user, pass, name string) *rmq.Connection {
	f.t.Helper()
	cfg := rmq.Config{Properties: rmq.Table{"connection_name": name}}
	url := strings.Replace(f.b.URL, "guest:guest", user+":"+pass, 1)
	c, err := rmq.DialConfig(url, cfg)
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) channel(c *rmq.Connection) *rmq.Channel {
	f.t.Helper()
	ch, err := c.Channel()
	if err != nil {
		f.t.Fatal(err)
	}
	return ch
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// num reads a JSON number at a dotted path.
func num(t *testing.T, m map[string]any, path string) float64 {
	t.Helper()
	var v any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no object at %q in %v", path, p, m)
		}
		v = mm[p]
	}
	n, ok := v.(float64)
	if !ok {
		t.Fatalf("%s = %v (%T), want a number", path, v, v)
	}
	return n
}

// dialVhostAs opens an AMQP connection as user to a vhost.
func (f *fixture) dialVhostAs(user, pass, vhost string) *rmq.Connection {
	f.t.Helper()
	url := strings.Replace(f.b.URL, "guest:guest", user+":"+pass, 1) + vhost
	c, err := rmq.Dial(url)
	if err != nil {
		f.t.Fatalf("dial %s as %s: %v", vhost, user, err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}
