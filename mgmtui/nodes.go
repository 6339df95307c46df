package mgmtui

import (
	"context"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// getClusterName serves GET /api/cluster-name.
func (a *API) getClusterName(w http.ResponseWriter, _ *http.Request, _ *user) {
	writeJSON(w, http.StatusOK, map[string]any{"name": a.clusterName()})
}

// nodes serves GET /api/nodes: every member of the cluster, running or
// not, with the figures of those that answer.
func (a *API) nodes(w http.ResponseWriter, r *http.Request, _ *user) {
	ms, err := a.members()
	if err != nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, "unavailable", err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, a.nodeObjects(r.Context(), ms))
}

// nodeByName serves GET /api/nodes/{node}.
func (a *API) nodeByName(w http.ResponseWriter, r *http.Request, _ *user) {
	m, aerr := a.memberVar(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, a.nodeObjects(r.Context(), []Member{m})[0])
}

// forgetNode serves DELETE /api/nodes/{node}, Warren's own (RabbitMQ
// forgets nodes only with rabbitmqctl forget_cluster_node): it removes a
// stopped member from the cluster.
func (a *API) forgetNode(w http.ResponseWriter, r *http.Request, _ *user) {
	m, aerr := a.memberVar(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	switch {
	case m.Name == a.opts.Node:
		writeError(w, badRequest("node %s cannot forget itself: ask another node", m.Name))
		return
	case m.Running:
		writeError(w, badRequest("node %s is running: stop it before forgetting it", m.Name))
		return
	}
	if err := a.opts.Cluster.Forget(r.Context(), m.Name); err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, "internal_error", err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// memberVar returns the member named by the request's {node}.
func (a *API) memberVar(r *http.Request) (Member, *apiError) {
	ms, err := a.members()
	if err != nil {
		return Member{}, &apiError{http.StatusServiceUnavailable, "unavailable", err.Error()}
	}
	name := pathVar(r, "node")
	for _, m := range ms {
		if m.Name == name {
			return m, nil
		}
	}
	return Member{}, notFound()
}

// nodeObjects renders members: this node's object, the objects the other
// running members give of themselves, and a short object for those that
// are down or do not answer. On a cluster node each has a "raft" object
// (Warren's): its suffrage and whether it leads, as this node sees it,
// and its own state and applied index when it answered.
func (a *API) nodeObjects(ctx context.Context, ms []Member) []object {
	var up []string
	for _, m := range ms {
		if m.Running && m.Name != a.opts.Node {
			up = append(up, m.Name)
		}
	}
	answers := ask[object](ctx, a, up, peerRequest{Op: peerNode})
	out := make([]object, 0, len(ms))
	for _, m := range ms {
		o := answers[m.Name]
		switch {
		case m.Name == a.opts.Node:
			o = a.node()
		case o == nil:
			o = object{"name": m.Name, "type": "disc", "being_drained": false, "partitions": []string{}}
		}
		o["running"] = m.Running || m.Name == a.opts.Node
		if a.opts.Cluster != nil {
			rs, _ := o["raft"].(map[string]any)
			if rs == nil {
				rs = map[string]any{}
			}
			rs["suffrage"] = suffrage(m)
			rs["leader"] = m.Leader
			o["raft"] = rs
		}
		out = append(out, o)
	}
	return out
}

func suffrage(m Member) string {
	switch {
	case m.Joining:
		return "joining"
	case m.Voter:
		return "voter"
	}
	return "nonvoter"
}

// node renders this node with its figures, RabbitMQ's fields where they
// have a meaning here: Go memory for the Erlang VM's, goroutines for its
// processes, client connections for its sockets.
func (a *API) node() object {
	res := a.srv.Resources()
	alarms := a.srv.Alarms()
	has := func(n string) bool {
		for _, x := range alarms {
			if x == n {
				return true
			}
		}
		return false
	}
	o := object{
		"name": a.opts.Node, "type": "disc", "running": true, "being_drained": false,
		"mem_used": res.MemoryUsed, "mem_limit": res.MemoryLimit, "mem_alarm": has("memory"),
		"disk_free": res.DiskFree, "disk_free_limit": res.DiskFreeLimit, "disk_free_alarm": has("disk"),
		"proc_used": runtime.NumGoroutine(), "processors": runtime.NumCPU(),
		"uptime": time.Since(a.started).Milliseconds(), "os_pid": strconv.Itoa(os.Getpid()),
		"partitions": []string{}, "rates_mode": "basic", "run_queue": 0,
		"sockets_used": len(a.srv.ConnectionInfos()),
		"contexts":     a.contexts(),
	}
	if used, ok := openFiles(); ok {
		o["fd_used"] = used
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		o["fd_total"] = lim.Cur
	}
	if a.opts.Cluster != nil {
		if st, err := a.opts.Cluster.Status(); err == nil {
			o["raft"] = map[string]any{"state": st.State, "applied_index": st.AppliedIndex, "known_leader": st.Leader}
		}
	}
	return o
}

// openFiles counts this process's open file descriptors (Linux).
func openFiles() (int, bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	return len(ents), true
}
