package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
)

// The tests of this file kill the broker with SIGKILL while it carries out
// one metadata operation from the management API, restart it on the same
// data dir and read its durable metadata back: it must be exactly the state
// before the operation or exactly the state after it, never a part of it.
// An operation the broker acknowledged before it died must be there.
//
// Each test prepares its data once, in a template data dir that every run
// copies. Run 0 kills the broker after the reply, to learn how long the
// operation takes; run 1 kills it as soon as the request is written; later
// runs kill it at a random moment within the operation's duration (as last
// measured: a run whose reply came before the kill measures it again). The
// random kill points, fractions of that duration, come from a seed that is
// logged and named in every failure; WARREN_ATOMIC_SEED sets it to replay
// them. The first run that ends without a vhost (deleted, or not created by
// the import) also creates it again and restarts: it must come back empty,
// without records of its namesake that the restart skipped.

// atomicRuns is how many times each test kills the broker.
const atomicRuns = 6

// TestAtomicUserDelete deletes a user that has permissions on 50 vhosts:
// after the crash the user is there with all 50 permissions, or it is gone
// with all of them.
func TestAtomicUserDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const user, vhosts = "atomic-user", 50
	template := t.TempDir()
	p := startWithManagement(t, template)
	api := newMgmtClient(t, p)
	api.mustDo(http.MethodPut, "/api/users/"+user, map[string]any{"password": "secret", "tags": "management"}, http.StatusCreated)
	for i := range vhosts {
		v := fmt.Sprintf("atomic-v%02d", i)
		api.mustDo(http.MethodPut, "/api/vhosts/"+v, nil, http.StatusCreated)
		api.mustDo(http.MethodPut, "/api/permissions/"+v+"/"+user,
			map[string]string{"configure": "^u-.*", "write": ".*", "read": "^u-.*"}, http.StatusCreated)
	}
	crashCase{
		template: template,
		before:   api.state(),
		touched: func(o object) bool {
			return o.Kind == "user" && o.Name == user || o.Kind == "permission" && o.Name == user
		},
		wantTouched: 1 + vhosts,
		method:      http.MethodDelete,
		path:        "/api/users/" + user,
	}.run(t, p)
}

// TestAtomicVhostDelete deletes a vhost with 1,000 durable queues, each
// bound to a durable exchange, a policy and two users' permissions: after
// the crash the vhost is there with all of it, or nothing of it is left,
// not even records that show up again when a vhost of that name is created.
func TestAtomicVhostDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const vhost, queues = "atomic-vh", 1000
	template := t.TempDir()
	p := startWithManagement(t, template)
	api := newMgmtClient(t, p)
	api.mustDo(http.MethodPut, "/api/vhosts/"+vhost, nil, http.StatusCreated)
	api.mustDo(http.MethodPut, "/api/users/atomic-app", map[string]any{"password": "secret", "tags": ""}, http.StatusCreated)
	api.mustDo(http.MethodPut, "/api/permissions/"+vhost+"/atomic-app",
		map[string]string{"configure": "", "write": "^atomic\\.", "read": "^q\\."}, http.StatusCreated)
	api.mustDo(http.MethodPut, "/api/policies/"+vhost+"/atomic-limit",
		map[string]any{"pattern": "^q\\.", "apply-to": "queues", "definition": map[string]any{"max-length": 100000}}, http.StatusCreated)
	declareQueues(t, p.URL()+vhost, queues)
	crashCase{
		template:    template,
		before:      api.state(),
		touched:     func(o object) bool { return o.Vhost == vhost },
		wantTouched: 1 + 1 + 2 + 1 + 2*queues, // vhost, policy, permissions, exchange, queues and bindings
		method:      http.MethodDelete,
		path:        "/api/vhosts/" + vhost,
	}.run(t, p)
}

// declareQueues declares n durable queues q.0000… in the vhost of url,
// each bound to the durable direct exchange atomic.x by its name, over
// eight connections so that the store commits them in groups.
func declareQueues(t *testing.T, url string, n int) {
	t.Helper()
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- declareQueueShare(url, w, workers, n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// declareQueueShare declares the queues i of n with i%workers == w.
func declareQueueShare(url string, w, workers, n int) error {
	c, err := rmq.Dial(url)
	if err != nil {
		return err
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	if err := ch.ExchangeDeclare("atomic.x", "direct", true, false, false, false, nil); err != nil {
		return err
	}
	for i := w; i < n; i += workers {
		name := fmt.Sprintf("q.%04d", i)
		if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare %s: %w", name, err)
		}
		if err := ch.QueueBind(name, name, "atomic.x", false, nil); err != nil {
			return fmt.Errorf("bind %s: %w", name, err)
		}
	}
	return nil
}

// TestAtomicDefinitionsImport imports a file of 2 vhosts, 20 users, their
// permissions, 4 policies, 10 exchanges, 500 queues and 510 bindings into
// a fresh broker: after the crash every object of the file is there, or
// none is.
func TestAtomicDefinitionsImport(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	d := atomicDefinitions()
	file, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	template := t.TempDir()
	p := startWithManagement(t, template)
	imported := definitionObjects(d)
	crashCase{
		template:    template,
		before:      newMgmtClient(t, p).state(),
		touched:     func(o object) bool { return imported[o] },
		wantTouched: len(imported),
		adds:        true,
		method:      http.MethodPost,
		path:        "/api/definitions",
		body:        file,
	}.run(t, p)
}

// atomicDefinitions is the file TestAtomicDefinitionsImport imports.
func atomicDefinitions() broker.Definitions {
	d := broker.Definitions{Policies: []broker.PolicyDef{}, Queues: []broker.QueueDef{}, Exchanges: []broker.ExchangeDef{}, Bindings: []broker.BindingDef{}}
	vhosts := []string{"import-a", "import-b"}
	for _, v := range vhosts {
		d.Vhosts = append(d.Vhosts, broker.VhostDef{Name: v})
	}
	hash := broker.HashPassword("secret")
	for i := range 20 {
		u := fmt.Sprintf("import-user-%02d", i)
		d.Users = append(d.Users, broker.UserDef{Name: u, PasswordHash: hash, HashingAlgorithm: "rabbit_password_hashing_sha256", Tags: broker.Tags{"management"}})
		for _, v := range vhosts {
			d.Permissions = append(d.Permissions, broker.Permission{User: u, Vhost: v, Configure: "^" + u + "\\.", Write: ".*", Read: ".*"})
		}
	}
	for _, v := range vhosts {
		d.Policies = append(d.Policies,
			broker.PolicyDef{Vhost: v, Name: "limit", Pattern: "^q\\.", ApplyTo: "queues", Definition: map[string]any{"max-length": 100000.0}, Priority: 1},
			broker.PolicyDef{Vhost: v, Name: "ttl", Pattern: "^q\\.1", ApplyTo: "queues", Definition: map[string]any{"message-ttl": 3600000.0}, Priority: 2})
		for e := range 5 {
			d.Exchanges = append(d.Exchanges, broker.ExchangeDef{Vhost: v, Name: fmt.Sprintf("ex.%d", e), Type: "topic", Durable: true})
		}
		d.Bindings = append(d.Bindings, broker.BindingDef{Vhost: v, Source: "ex.0", Destination: "ex.1", DestinationType: "exchange", RoutingKey: "#"})
		for e := 1; e < 5; e++ {
			d.Bindings = append(d.Bindings, broker.BindingDef{Vhost: v, Source: "ex.0", Destination: fmt.Sprintf("ex.%d", e), DestinationType: "exchange", RoutingKey: fmt.Sprintf("k%d.#", e)})
		}
		for q := range 250 {
			name := fmt.Sprintf("q.%03d", q)
			d.Queues = append(d.Queues, broker.QueueDef{Vhost: v, Name: name, Type: "classic", Durable: true})
			d.Bindings = append(d.Bindings, broker.BindingDef{Vhost: v, Source: fmt.Sprintf("ex.%d", q%5), Destination: name, DestinationType: "queue", RoutingKey: name})
		}
	}
	return d
}

// crashCase is one metadata operation to interrupt. Its objects are those
// touched selects from the state before it (a delete) or after it (an
// import, with adds set).
type crashCase struct {
	template    string  // data dir each run starts from
	before      objects // its durable metadata
	touched     func(object) bool
	wantTouched int // how many objects touched selects, to catch a mistaken setup
	adds        bool
	method      string
	path        string
	body        []byte
}

// run kills the broker during the operation atomicRuns times and checks
// each restart's state. setup is the template's broker, stopped here.
func (c crashCase) run(t *testing.T, setup *process) {
	if err := setup.stop(); err != nil {
		t.Fatalf("stop the template's broker: %v", err)
	}
	after := objects{}
	for o := range c.before {
		if c.adds || !c.touched(o) {
			after[o] = true
		}
	}
	if c.adds {
		for o := range definitionObjects(mustDecodeDefinitions(t, c.body)) {
			after[o] = true
		}
	}
	scope := after
	if !c.adds {
		scope = c.before
	}
	var touched []object
	for o := range scope {
		if c.touched(o) {
			touched = append(touched, o)
		}
	}
	if len(touched) != c.wantTouched {
		t.Fatalf("setup: the operation touches %d objects, want %d", len(touched), c.wantTouched)
	}

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WARREN_ATOMIC_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("WARREN_ATOMIC_SEED: %v", err)
		}
	}
	t.Logf("%s %s touches %d objects; kill points from seed %d (WARREN_ATOMIC_SEED=%d replays them)", c.method, c.path, len(touched), seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var took time.Duration
	probed := false
	for run := range atomicRuns {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(c.template)); err != nil {
			t.Fatalf("copy the template data dir: %v", err)
		}
		p := startWithManagement(t, dir)
		delay := time.Duration(-1) // run 0: after the reply
		switch {
		case run == 1:
			delay = 0
		case run > 1:
			delay = time.Duration(rng.Float64() * float64(took))
		}
		res := killDuring(t, p, c.method, c.path, c.body, delay)
		if res.status != 0 {
			took = res.took
		}
		p2 := startWithManagement(t, dir)
		got := newMgmtClient(t, p2).state()
		where := fmt.Sprintf("run %d (%s; seed %d)", run, res, seed)
		switch {
		case got.equal(c.before):
			t.Logf("%s: restarted with the state before the operation", where)
			if res.acked {
				t.Errorf("%s: the broker replied %d before it was killed, but after the restart the operation is undone", where, res.status)
			}
		case got.equal(after):
			t.Logf("%s: restarted with the state after the operation", where)
		default:
			t.Errorf("%s: PARTIAL STATE after the restart: %s", where, describePartial(got, c.before, after, touched))
		}
		if gone := goneVhosts(got, c.before, after); len(gone) > 0 && !probed && (got.equal(c.before) || got.equal(after)) {
			probed = true
			probeHiddenRecords(t, p2, dir, got, gone, where)
		}
		p2.kill()
	}
}

// killResult is what became of the request before the kill.
type killResult struct {
	delay  time.Duration // after the request was written; -1: after the reply
	status int           // the reply's status, 0 if none came
	acked  bool          // a 2xx reply came
	took   time.Duration // from the request written to the reply
}

func (r killResult) String() string {
	kill := "killed after the reply"
	if r.delay >= 0 {
		kill = fmt.Sprintf("killed %v after the request was written", r.delay)
	}
	if r.status == 0 {
		return kill + ", no reply"
	}
	return fmt.Sprintf("%s, reply %d after %v", kill, r.status, r.took.Round(time.Millisecond))
}

// killDuring sends the request to p's management API and kills p delay
// after the request is written (or after the reply, for a negative delay).
func killDuring(t *testing.T, p *process, method, path string, body []byte, delay time.Duration) killResult {
	t.Helper()
	written := make(chan time.Time, 1)
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written <- time.Now() }}
	ctx, cancel := context.WithTimeout(httptrace.WithClientTrace(context.Background(), trace), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.MgmtAddr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	type reply struct {
		status int
		at     time.Time
		err    error
	}
	replied := make(chan reply, 1)
	go func() {
		resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
		if err != nil {
			replied <- reply{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		replied <- reply{status: resp.StatusCode, at: time.Now()}
	}()
	var sent time.Time
	select {
	case sent = <-written:
	case r := <-replied:
		t.Fatalf("%s %s: not sent: %v", method, path, r.err)
	}
	res := killResult{delay: delay}
	var r reply
	if delay < 0 {
		r = <-replied
		p.kill()
	} else {
		time.Sleep(delay) // the kill point under test
		p.kill()
		r = <-replied
	}
	if r.err == nil {
		res.status, res.took = r.status, r.at.Sub(sent)
		res.acked = r.status >= 200 && r.status < 300
		if !res.acked {
			t.Fatalf("%s %s: status %d", method, path, r.status)
		}
	} else if delay < 0 {
		t.Fatalf("%s %s: %v", method, path, r.err)
	}
	return res
}

// goneVhosts are the vhosts of before or after that got lacks: those the
// operation deleted or did not create.
func goneVhosts(got, before, after objects) []string {
	var gone []string
	for _, s := range []objects{before, after} {
		for o := range s {
			if o.Kind == "vhost" && !got[o] && !slices.Contains(gone, o.Name) {
				gone = append(gone, o.Name)
			}
		}
	}
	slices.Sort(gone)
	return gone
}

// probeHiddenRecords creates the vhosts anew on p, whose state is got,
// and restarts it: the new vhosts must be empty, not filled with records
// of their namesakes that the restart did not show because their vhost
// was missing.
func probeHiddenRecords(t *testing.T, p *process, dir string, got objects, vhosts []string, where string) {
	api := newMgmtClient(t, p)
	want := objects{}
	for o := range got {
		want[o] = true
	}
	for _, v := range vhosts {
		api.mustDo(http.MethodPut, "/api/vhosts/"+v, nil, http.StatusCreated)
		want[object{Kind: "vhost", Vhost: v, Name: v}] = true
		want[object{Kind: "permission", Vhost: v, Name: "guest", Detail: ".* .* .*"}] = true
	}
	p.kill()
	p2 := startWithManagement(t, dir)
	if again := newMgmtClient(t, p2).state(); !again.equal(want) {
		t.Errorf("%s: RECORDS LEFT BEHIND: after creating vhost(s) %s again and restarting, the state differs from the state with empty new vhosts: %s",
			where, strings.Join(vhosts, ", "), describeDiff(again, want))
	} else {
		t.Logf("%s: vhost(s) %s created again are empty after a restart", where, strings.Join(vhosts, ", "))
	}
	p2.kill()
}

// object is one durable metadata object, in a form that two listings of
// the same state give alike.
type object struct {
	Kind   string // vhost, user, permission, policy, exchange, queue, binding
	Vhost  string // the vhost it belongs to; for a vhost its name; empty for a user
	Name   string // for a permission its user; for a binding "source -> destination"
	Detail string // the rest that must survive: patterns, type, routing key
}

func (o object) String() string {
	s := o.Kind + " "
	if o.Vhost != "" && o.Kind != "vhost" {
		s += o.Vhost + "/"
	}
	s += o.Name
	if o.Detail != "" {
		s += " (" + o.Detail + ")"
	}
	return s
}

// objects is a set of objects.
type objects map[object]bool

func (s objects) equal(o objects) bool {
	if len(s) != len(o) {
		return false
	}
	for x := range s {
		if !o[x] {
			return false
		}
	}
	return true
}

// definitionObjects are the objects of d; those a definitions export
// leaves out (non-durable ones, predeclared exchanges, the default
// exchange's bindings) are left out too.
func definitionObjects(d broker.Definitions) objects {
	s := objects{}
	for _, v := range d.Vhosts {
		s[object{Kind: "vhost", Vhost: v.Name, Name: v.Name}] = true
	}
	for _, u := range d.Users {
		tags := slices.Clone(u.Tags)
		slices.Sort(tags)
		s[object{Kind: "user", Name: u.Name, Detail: strings.Join(tags, ",")}] = true
	}
	for _, p := range d.Permissions {
		s[object{Kind: "permission", Vhost: p.Vhost, Name: p.User, Detail: p.Configure + " " + p.Write + " " + p.Read}] = true
	}
	for _, p := range d.Policies {
		def, _ := json.Marshal(p.Definition) // map keys sorted
		s[object{Kind: "policy", Vhost: p.Vhost, Name: p.Name, Detail: fmt.Sprintf("%s %s %d %s", p.Pattern, p.ApplyTo, p.Priority, def)}] = true
	}
	for _, e := range d.Exchanges {
		if e.Durable && e.Name != "" && !strings.HasPrefix(e.Name, "amq.") {
			s[object{Kind: "exchange", Vhost: e.Vhost, Name: e.Name, Detail: e.Type}] = true
		}
	}
	for _, q := range d.Queues {
		if q.Durable {
			s[object{Kind: "queue", Vhost: q.Vhost, Name: q.Name}] = true
		}
	}
	for _, b := range d.Bindings {
		if b.Source != "" {
			s[object{Kind: "binding", Vhost: b.Vhost, Name: b.Source + " -> " + b.DestinationType + " " + b.Destination, Detail: b.RoutingKey}] = true
		}
	}
	return s
}

func mustDecodeDefinitions(t *testing.T, b []byte) broker.Definitions {
	t.Helper()
	var d broker.Definitions
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// describePartial says what of the operation's objects got holds, by kind
// with examples, and what changed beyond them.
func describePartial(got, before, after objects, touched []object) string {
	type tally struct {
		present, absent []object
	}
	byKind := map[string]*tally{}
	var kinds []string
	for _, o := range touched {
		k := byKind[o.Kind]
		if k == nil {
			k = &tally{}
			byKind[o.Kind] = k
			kinds = append(kinds, o.Kind)
		}
		if got[o] {
			k.present = append(k.present, o)
		} else {
			k.absent = append(k.absent, o)
		}
	}
	slices.Sort(kinds)
	n := 0
	var parts []string
	for _, kind := range kinds {
		k := byKind[kind]
		n += len(k.present)
		part := fmt.Sprintf("%s: %d of %d present", kind, len(k.present), len(k.present)+len(k.absent))
		if len(k.present) > 0 && len(k.absent) > 0 {
			part += fmt.Sprintf(" (present e.g. %s; absent e.g. %s)", examples(k.present), examples(k.absent))
		}
		parts = append(parts, part)
	}
	msg := fmt.Sprintf("%d of the operation's %d objects are present; %s", n, len(touched), strings.Join(parts, "; "))
	var others []object
	for o := range got {
		if !before[o] && !after[o] {
			others = append(others, o)
		}
	}
	if len(others) > 0 {
		msg += fmt.Sprintf("; %d objects that are in neither state, e.g. %s", len(others), examples(others))
	}
	var lost []object
	for o := range before {
		if after[o] && !got[o] {
			lost = append(lost, o)
		}
	}
	if len(lost) > 0 {
		msg += fmt.Sprintf("; %d objects the operation does not touch are missing, e.g. %s", len(lost), examples(lost))
	}
	return msg
}

// describeDiff lists what got and want hold apart.
func describeDiff(got, want objects) string {
	var extra, missing []object
	for o := range got {
		if !want[o] {
			extra = append(extra, o)
		}
	}
	for o := range want {
		if !got[o] {
			missing = append(missing, o)
		}
	}
	return fmt.Sprintf("%d unexpected objects (e.g. %s), %d missing (e.g. %s)", len(extra), examples(extra), len(missing), examples(missing))
}

// examples names up to three of list, sorted.
func examples(list []object) string {
	names := make([]string, len(list))
	for i, o := range list {
		names[i] = o.String()
	}
	slices.Sort(names)
	if len(names) > 3 {
		names = append(names[:3], "…")
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// mgmtClient calls a process's management API as guest.
type mgmtClient struct {
	t    *testing.T
	base string
	http *http.Client
}

func newMgmtClient(t *testing.T, p *process) *mgmtClient {
	return &mgmtClient{t: t, base: "http://" + p.MgmtAddr, http: &http.Client{Timeout: time.Minute}}
}

// do sends body (JSON-encoded unless nil) and returns the status and reply.
func (c *mgmtClient) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, reply
}

func (c *mgmtClient) mustDo(method, path string, body any, want int) {
	c.t.Helper()
	if status, reply := c.do(method, path, body); status != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, reply)
	}
}

func (c *mgmtClient) getJSON(path string, v any) {
	c.t.Helper()
	status, reply := c.do(http.MethodGet, path, nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET %s: status %d: %s", path, status, reply)
	}
	if err := json.Unmarshal(reply, v); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// state reads the durable metadata from the listings (/api/vhosts, users,
// permissions, policies, exchanges, queues, bindings), and checks that
// /api/definitions says the same.
func (c *mgmtClient) state() objects {
	c.t.Helper()
	var listed broker.Definitions
	c.getJSON("/api/vhosts", &listed.Vhosts)
	c.getJSON("/api/users", &listed.Users)
	c.getJSON("/api/permissions", &listed.Permissions)
	c.getJSON("/api/policies", &listed.Policies)
	c.getJSON("/api/exchanges", &listed.Exchanges)
	c.getJSON("/api/queues?columns=name,vhost,durable", &listed.Queues)
	c.getJSON("/api/bindings", &listed.Bindings)
	s := definitionObjects(listed)
	var exported broker.Definitions
	c.getJSON("/api/definitions", &exported)
	if e := definitionObjects(exported); !e.equal(s) {
		c.t.Errorf("/api/definitions and the listings disagree: the export has %s", describeDiff(e, s))
	}
	return s
}
