package mgmtui

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/warrenmq/warren/broker"
)

// Version is the RabbitMQ version the API reports, so that clients that
// check it (rabbitmqadmin, the rabbit-hole client) treat Warren as a 3.10.
const Version = "3.10.8"

// Options configure the management API.
type Options struct {
	// Node is the node's name in the API; default "warren@<hostname>".
	Node string
	// AMQPAddr and HTTPAddr are the listeners' addresses, reported by
	// /api/overview and checked by the port-listener health check.
	AMQPAddr, HTTPAddr string
	// SampleInterval is how often rates are sampled; default 5 s.
	SampleInterval time.Duration
	// UI serves the web UI at "/"; nil serves only the API.
	UI http.Handler
	// Logger receives request errors; default slog.Default().
	Logger *slog.Logger
	// Cluster is the cluster this node belongs to, nil for a standalone
	// node; Node must then be this node's name in the cluster. The API
	// lists every node's connections, channels, consumers and figures,
	// asking the others through Cluster.Query, which must reach their
	// AnswerPeer.
	Cluster Cluster
	// PeerTimeout bounds the wait for the other nodes' answers; a node
	// that does not answer in time is left out. Default 2 s.
	PeerTimeout time.Duration
}

// API is the management HTTP handler: the RabbitMQ-compatible API under
// /api, Prometheus metrics at /metrics, and the web UI.
type API struct {
	srv     *broker.Server
	opts    Options
	router  *mux.Router
	rates   *sampler
	started time.Time
	cancel  context.CancelFunc
}

// New returns the management API for srv and starts its rate sampler;
// Close stops it.
func New(srv *broker.Server, opts Options) *API {
	if opts.Node == "" {
		host, _ := os.Hostname()
		opts.Node = "warren@" + host
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PeerTimeout <= 0 {
		opts.PeerTimeout = defaultPeerTimeout
	}
	a := &API{srv: srv, opts: opts, started: time.Now(), rates: newSampler()}
	a.router = mux.NewRouter().UseEncodedPath()
	a.routes()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.sampleLoop(ctx)
	return a
}

// Close stops the rate sampler.
func (a *API) Close() { a.cancel() }

// ServeHTTP serves a request; a trailing slash on an API path is ignored.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.EscapedPath(); len(p) > len("/api/") && strings.HasPrefix(p, "/api/") && strings.HasSuffix(p, "/") {
		u := *r.URL
		u.RawPath = strings.TrimSuffix(p, "/")
		u.Path, _ = url.PathUnescape(u.RawPath)
		r = r.Clone(r.Context())
		r.URL = &u
	}
	a.router.ServeHTTP(w, r)
}

// access is what a route requires of the user's tags.
type access int

const (
	anyUser   access = iota // management, policymaker, monitoring or administrator
	monitor                 // monitoring or administrator
	policy                  // policymaker or administrator
	adminOnly               // administrator
	noAuth                  // no credentials needed
)

// handler is a route's function; it gets the authenticated user.
type handler func(w http.ResponseWriter, r *http.Request, u *user)

// user is an authenticated API user.
type user struct {
	broker.User
}

func (u *user) hasTag(tags ...string) bool {
	for _, t := range u.Tags {
		if slices.Contains(tags, t) {
			return true
		}
	}
	return false
}

func (u *user) isAdmin() bool { return u.hasTag("administrator") }

// seesAll reports whether the user may see every vhost's objects and other
// users' connections (monitoring and administrator).
func (u *user) seesAll() bool { return u.hasTag("administrator", "monitoring") }

func (a *API) handle(path string, need access, h handler, methods ...string) {
	a.router.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u *user
		if need != noAuth {
			var err *apiError
			if u, err = a.authenticate(r, need); err != nil {
				if err.status == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
				}
				writeError(w, err)
				return
			}
		}
		h(w, r, u)
	})).Methods(methods...)
}

// authenticate checks HTTP basic credentials and the tags need asks for.
func (a *API) authenticate(r *http.Request, need access) (*user, *apiError) {
	name, pass, ok := r.BasicAuth()
	if !ok {
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Not_Authorized"}
	}
	bu, ok := a.srv.Users().Authenticate(name, pass)
	if !ok {
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "Login failed"}
	}
	if slices.Contains(a.srv.Config().LoopbackUsers, name) && !isLoopbackRequest(r) {
		return nil, &apiError{http.StatusUnauthorized, "not_authorised", "User can only log in via localhost"}
	}
	u := &user{bu}
	if !u.hasTag("administrator", "monitoring", "policymaker", "management") {
		return nil, forbidden("Not management user")
	}
	switch need {
	case monitor:
		if !u.hasTag("administrator", "monitoring") {
			return nil, forbidden("Not monitor user")
		}
	case policy:
		if !u.hasTag("administrator", "policymaker") {
			return nil, forbidden("Not policymaker user")
		}
	case adminOnly:
		if !u.isAdmin() {
			return nil, forbidden("Not administrator user")
		}
	}
	return u, nil
}

func isLoopbackRequest(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pathVar returns a decoded path variable ("%2F" is the vhost "/").
func pathVar(r *http.Request, name string) string {
	v := mux.Vars(r)[name]
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}

// vhostVar returns the request's vhost, checking the user may use it.
func (a *API) vhostVar(r *http.Request, u *user) (*broker.Vhost, *apiError) {
	name := pathVar(r, "vhost")
	v := a.srv.Vhost(name)
	if v == nil {
		return nil, notFound()
	}
	if !a.canSee(u, name) {
		return nil, forbidden("Access refused.")
	}
	return v, nil
}

// canSee reports whether u may see the vhost's objects.
func (a *API) canSee(u *user, vhost string) bool {
	return u.seesAll() || a.srv.Users().HasVhostAccess(u.Name, vhost)
}

// visibleVhosts are the vhosts u may see, optionally only the request's.
func (a *API) visibleVhosts(r *http.Request, u *user) ([]*broker.Vhost, *apiError) {
	if _, ok := mux.Vars(r)["vhost"]; ok {
		v, err := a.vhostVar(r, u)
		if err != nil {
			return nil, err
		}
		return []*broker.Vhost{v}, nil
	}
	var out []*broker.Vhost
	for _, v := range a.srv.Vhosts() {
		if a.canSee(u, v.Name()) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(x, y *broker.Vhost) int { return strings.Compare(x.Name(), y.Name()) })
	return out, nil
}

// requirePermission checks u's AMQP permission on a resource, as RabbitMQ's
// API does for declares, deletes, bindings, publishes and gets.
func (a *API) requirePermission(u *user, vhost string, acc broker.Access, kind, name string) *apiError {
	resource := name
	if kind == "exchange" && name == "" {
		resource = "amq.default"
	}
	if a.srv.Users().Allowed(u.Name, vhost, acc, resource) {
		return nil
	}
	return forbidden("access to " + kind + " '" + resource + "' in vhost '" + vhost + "' refused for user '" + u.Name + "'")
}

// port is the TCP port of a listen address, or 0.
func port(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

func muxVars(r *http.Request) map[string]string { return mux.Vars(r) }
