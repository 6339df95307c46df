package mgmtui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warrenmq/warren/mgmtui"
)

// findBrowser returns a Chromium or Chrome binary, or "".
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is where screenshots go: $WARREN_TEST_ARTIFACTS, default
// test-artifacts/ at the repository root.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("WARREN_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is a headless Chromium for one test, with helpers for its steps.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// startBrowser starts headless Chromium for the test, or skips it when
// there is none.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := findBrowser()
	if path == "" {
		t.Skip("no Chromium or Chrome found (Debian: apt-get install chromium); .ci/run installs it")
	}
	// Chromium's helper processes may still write to the profile for a
	// moment after the browser exits, so the profile is removed with
	// retries rather than by t.TempDir's single attempt.
	profile, err := os.MkdirTemp("", "warren-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 1000))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(string, ...any) {})) // the protocol's newer events are noise
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil { // starts the browser, for the life of ctx
		t.Fatalf("start %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx, dir: artifactDir(t)}
}

// shot saves a screenshot under the artifact dir.
func (b *browser) shot(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var png []byte
		if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.dir, name), png, 0o644)
	})
}

// textIs waits until the element's text is want.
func textIs(sel, want string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var got string
			if err := chromedp.Text(sel, &got, chromedp.ByQuery).Do(ctx); err == nil && strings.TrimSpace(got) == want {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// run runs one step's actions within 20 s, failing the test with the
// page's text if they fail.
func (b *browser) run(step string, actions ...chromedp.Action) {
	b.t.Helper()
	stepCtx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(stepCtx, actions...); err != nil {
		var page string
		dumpCtx, cancelDump := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancelDump()
		_ = chromedp.Run(dumpCtx, chromedp.Text("body", &page, chromedp.ByQuery))
		b.t.Fatalf("%s: %v\npage:\n%s", step, err, page)
	}
}

// logIn opens the UI at url and logs in as guest.
func (b *browser) logIn(url string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(url + "/"),
		chromedp.WaitVisible("#login-user", chromedp.ByQuery),
		chromedp.SendKeys("#login-user", "guest", chromedp.ByQuery),
		chromedp.SendKeys("#login-pass", "guest", chromedp.ByQuery),
		chromedp.Click("#login-btn", chromedp.ByQuery),
		chromedp.WaitVisible("#overview", chromedp.ByQuery),
	}
}

// TestWebUIInChromium drives the embedded UI in headless Chromium: log in,
// declare a queue, publish to it, see its count change, purge it.
func TestWebUIInChromium(t *testing.T) {
	b := startBrowser(t)
	f := newFixture(t)
	ui := httptest.NewServer(mgmtui.New(f.b.Server, mgmtui.Options{Node: "warren@test", AMQPAddr: f.b.Addr, UI: mgmtui.UIHandler(), SampleInterval: 100 * time.Millisecond}))
	t.Cleanup(ui.Close)
	run, shot := b.run, b.shot

	run("log in",
		b.logIn(ui.URL),
		textIs("#total-queues", "0"),
		textIs("#node-warren_test td:nth-child(2)", "running"),
		textIs("#node-warren_test td:nth-child(3)", "standalone"),
		shot("overview.png"))

	run("declare a queue",
		chromedp.Navigate(ui.URL+"/#/queues"),
		chromedp.WaitVisible("#q-name", chromedp.ByQuery),
		chromedp.SendKeys("#q-name", "ui-queue", chromedp.ByQuery),
		chromedp.Click("#q-declare-btn", chromedp.ByQuery),
		chromedp.WaitVisible(`a[href="#/queue/%2F/ui-queue"]`, chromedp.ByQuery))
	if q := f.b.Server.Vhost("/").Queue("ui-queue"); q == nil {
		t.Fatal("the UI did not declare the queue")
	}

	run("publish to it and see the count change",
		chromedp.Click(`a[href="#/queue/%2F/ui-queue"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#pub-payload", chromedp.ByQuery),
		textIs("#q-messages", "0"),
		chromedp.SendKeys("#pub-payload", "hello from the browser", chromedp.ByQuery),
		chromedp.Click("#pub-btn", chromedp.ByQuery),
		textIs("#q-messages", "1"),
		chromedp.Click("#q-get-btn", chromedp.ByQuery),
		chromedp.WaitVisible("#q-got table", chromedp.ByQuery),
		shot("queue.png"))
	var got string
	run("read the message", chromedp.Text("#q-got", &got, chromedp.ByQuery))
	if !strings.Contains(got, "hello from the browser") {
		t.Fatalf("got messages panel = %q", got)
	}

	run("purge it", chromedp.Click("#q-purge", chromedp.ByQuery), textIs("#q-messages", "0"))
	if ready, _, _ := f.b.Server.Vhost("/").Queue("ui-queue").Counts(); ready != 0 {
		t.Fatalf("after purge the queue holds %d", ready)
	}

	// The API behind the UI also answers the UI's own origin.
	if r, err := http.Get(ui.URL + "/app.js"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("app.js: %v %v", r, err)
	}
}

// TestWebUIShowsClusterNodes: the overview of node a of a three-node
// cluster whose node c is down lists the three nodes, their state and
// role, and forgets c at the click of its button.
func TestWebUIShowsClusterNodes(t *testing.T) {
	b := startBrowser(t)
	fn, fx := startFakeCluster(t, "warren@a", "warren@b", "warren@c")
	fn.set(fn.down, "warren@c", true)
	ui := httptest.NewServer(fx["warren@a"].api)
	t.Cleanup(ui.Close)
	b.run("log in and see the nodes",
		b.logIn(ui.URL),
		textIs("#cluster-line", "Cluster warren@a · 2 of 3 nodes running · this is warren@a"),
		textIs("#node-warren_a td:nth-child(2)", "running"),
		textIs("#node-warren_a td:nth-child(3)", "voter, leader"),
		textIs("#node-warren_a td:nth-child(4)", "follower"),
		textIs("#node-warren_b td:nth-child(2)", "running"),
		textIs("#node-warren_b td:nth-child(3)", "voter"),
		textIs("#node-warren_c td:nth-child(2)", "down"),
		textIs("#node-warren_c td:nth-child(3)", "nonvoter"),
		b.shot("cluster-overview.png"))
	b.run("forget c",
		chromedp.Click("#node-warren_c button", chromedp.ByQuery),
		chromedp.WaitNotPresent("#node-warren_c", chromedp.ByQuery),
		textIs("#cluster-line", "Cluster warren@a · 2 of 2 nodes running · this is warren@a"))
}
