package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// fakeClusterAPI serves /api/overview and /api/nodes of a three-node
// cluster whose third node is down, and records forgets: a stopped node
// is forgotten (204), a running one is refused (400) as Warren does.
type fakeClusterAPI struct {
	mu        sync.Mutex
	forgotten []string
}

const fakeNodes = `[
 {"name":"warren@a","running":true,"uptime":754000,"mem_used":52428800,"type":"disc",
  "raft":{"suffrage":"voter","leader":true,"state":"leader","applied_index":42}},
 {"name":"warren@b","running":true,"uptime":1000,"mem_used":1048576,"type":"disc",
  "raft":{"suffrage":"voter","leader":false,"state":"follower","applied_index":41}},
 {"name":"warren@c","running":false,"type":"disc","raft":{"suffrage":"nonvoter","leader":false}}]`

func (f *fakeClusterAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u, p, _ := r.BasicAuth(); u != "guest" || p != "guest" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/overview":
		w.Write([]byte(`{"cluster_name":"warren@a","node":"warren@b"}`))
	case r.Method == http.MethodGet && r.URL.Path == "/api/nodes":
		w.Write([]byte(fakeNodes))
	case r.Method == http.MethodDelete && r.URL.Path == "/api/nodes/warren@c":
		f.mu.Lock()
		f.forgotten = append(f.forgotten, "warren@c")
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodDelete && r.URL.Path == "/api/nodes/warren@b":
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"bad_request","reason":"node warren@b is running: stop it before forgetting it"}`))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":"Object Not Found","reason":"Not Found"}`))
	}
}

// TestClusterStatus prints the cluster's name, leader and one row per
// node, "-" for what a stopped node cannot report.
func TestClusterStatus(t *testing.T) {
	srv := httptest.NewServer(&fakeClusterAPI{})
	defer srv.Close()
	out := ctl{t: t, url: srv.URL}.must("cluster", "status")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[0] != "Cluster warren@a, 3 members, leader warren@a (asked warren@b)" {
		t.Fatalf("status:\n%s", out)
	}
	for i, want := range []string{
		`^NODE\s+RUNNING\s+VOTER\s+LEADER\s+STATE\s+APPLIED\s+UPTIME\s+MEMORY$`,
		`^warren@a\s+yes\s+yes\s+yes\s+leader\s+42\s+12m34s\s+50 MiB$`,
		`^warren@b\s+yes\s+yes\s+no\s+follower\s+41\s+1s\s+1 MiB$`,
		`^warren@c\s+no\s+no\s+no\s+down\s+-\s+-\s+-$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i+1], want)
		}
	}
}

// TestClusterForget forgets a stopped node with DELETE /api/nodes/NODE
// and reports the API's reason when it refuses.
func TestClusterForget(t *testing.T) {
	api := &fakeClusterAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c := ctl{t: t, url: srv.URL}
	if out := c.must("cluster", "forget", "warren@c"); out != "warren@c forgotten\n" {
		t.Fatalf("forget output %q", out)
	}
	api.mu.Lock()
	forgotten := append([]string(nil), api.forgotten...)
	api.mu.Unlock()
	if len(forgotten) != 1 {
		t.Fatalf("forgotten = %v", forgotten)
	}
	_, err := c.run("cluster", "forget", "warren@b")
	if err == nil || !strings.Contains(err.Error(), "is running: stop it before forgetting it") {
		t.Fatalf("forgetting a running node: %v", err)
	}
	if _, err := c.run("cluster", "forget"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("forget without a node: %v", err)
	}
}

// TestClusterStatusStandalone runs against a standalone broker's API.
func TestClusterStatusStandalone(t *testing.T) {
	c, _ := newCtl(t)
	out := c.must("cluster", "status")
	if !strings.HasPrefix(out, "Standalone node ") || !regexp.MustCompile(`(?m)^warren@\S+\s+yes\s+-\s+-\s+-\s+-\s+\d+s\s+\d+ MiB$`).MatchString(out) {
		t.Fatalf("standalone status:\n%s", out)
	}
	if _, err := c.run("cluster", "forget", "warren@elsewhere"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("forget on a standalone node: %v", err)
	}
}
