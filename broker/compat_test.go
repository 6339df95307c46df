package broker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
)

// Compatibility tests run one scenario, with the same assertions, against
// Warren and against a real RabbitMQ: a test that passes on Warren but
// fails on RabbitMQ is itself wrong. The RabbitMQ half uses the broker
// named by compareURLEnv, or amqp://guest:guest@127.0.0.1:5672/, and is
// skipped (with a log line) when no RabbitMQ answers there: CI installs
// rabbitmq-server but does not start it.

// defaultRabbitURL is where a local RabbitMQ listens by default.
const defaultRabbitURL = "amqp://guest:guest@127.0.0.1:5672/"

// compatBroker is one broker a compatibility test runs against.
type compatBroker struct {
	t *testing.T
	// Name is "warren" or "rabbitmq".
	Name string
	// URL is an AMQP URL with guest credentials; Addr its host:port.
	URL, Addr string
	// Warren is the Warren broker, nil for RabbitMQ.
	Warren *brokertest.Broker
}

// onBothBrokers runs fn as subtest "warren" against a fresh Warren broker
// (started with opts), then as subtest "rabbitmq" against RabbitMQ when
// one is reachable.
func onBothBrokers(t *testing.T, fn func(t *testing.T, b *compatBroker), opts ...brokertest.Option) {
	t.Helper()
	t.Run("warren", func(t *testing.T) {
		w := brokertest.Start(t, opts...)
		fn(t, &compatBroker{t: t, Name: "warren", URL: w.URL, Addr: w.Addr, Warren: w})
	})
	t.Run("rabbitmq", func(t *testing.T) {
		fn(t, rabbitBroker(t))
	})
}

// rabbitBroker returns the RabbitMQ to compare with, or skips the test.
func rabbitBroker(t *testing.T) *compatBroker {
	t.Helper()
	raw := os.Getenv(compareURLEnv)
	if raw == "" {
		raw = defaultRabbitURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", compareURLEnv, err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		t.Skipf("RabbitMQ is not reachable at %s (%v): the RabbitMQ half is skipped", u.Host, err)
	}
	nc.Close()
	c, err := rmq.DialConfig(raw, rmq.Config{Dial: rmq.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Skipf("no AMQP broker answers at %s (%v): the RabbitMQ half is skipped", u.Host, err)
	}
	product, _ := c.Properties["product"].(string)
	c.Close()
	if product != "RabbitMQ" {
		t.Skipf("the broker at %s is %q, not RabbitMQ: the RabbitMQ half is skipped", u.Host, product)
	}
	return &compatBroker{t: t, Name: "rabbitmq", URL: raw, Addr: u.Host}
}

// isRabbit reports whether b is RabbitMQ.
func (b *compatBroker) isRabbit() bool { return b.Warren == nil }

// dial opens a connection, closed when the test ends.
func (b *compatBroker) dial() *rmq.Connection {
	b.t.Helper()
	return dial(b.t, b.URL)
}

// channel opens a connection and a channel on it.
func (b *compatBroker) channel() *rmq.Channel {
	b.t.Helper()
	return openChannel(b.t, b.dial())
}

// unique returns a name no other run uses, so that tests against a shared
// RabbitMQ do not meet each other's leftovers.
func (b *compatBroker) unique(prefix string) string {
	var r [4]byte
	rand.Read(r[:])
	return "compat-" + prefix + "-" + hex.EncodeToString(r[:])
}

// queue declares a transient queue with a unique name (and args), deleted
// when the test ends.
func (b *compatBroker) queue(ch *rmq.Channel, prefix string, args rmq.Table) string {
	b.t.Helper()
	name := b.unique(prefix)
	if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		b.t.Fatalf("declare queue %s: %v", name, err)
	}
	b.cleanupQueue(name)
	return name
}

// exchange declares a transient exchange of kind with a unique name,
// deleted when the test ends.
func (b *compatBroker) exchange(ch *rmq.Channel, prefix, kind string) string {
	b.t.Helper()
	name := b.unique(prefix)
	if err := ch.ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
		b.t.Fatalf("declare exchange %s: %v", name, err)
	}
	b.cleanupExchange(name)
	return name
}

// cleanupQueue deletes the queue name when the test ends (on a connection
// of its own: the test's may be closed by then).
func (b *compatBroker) cleanupQueue(name string) {
	b.cleanup(func(ch *rmq.Channel) error {
		_, err := ch.QueueDelete(name, false, false, false)
		return err
	})
}

// cleanupExchange deletes the exchange name when the test ends.
func (b *compatBroker) cleanupExchange(name string) {
	b.cleanup(func(ch *rmq.Channel) error { return ch.ExchangeDelete(name, false, false) })
}

func (b *compatBroker) cleanup(del func(*rmq.Channel) error) {
	if !b.isRabbit() {
		return // the Warren broker goes with the test
	}
	t := b.t
	t.Cleanup(func() {
		c, err := rmq.Dial(b.URL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if err := del(ch); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// rabbitmqctl runs rabbitmqctl with args against the local RabbitMQ node,
// skipping the test when the tool is missing.
func (b *compatBroker) rabbitmqctl(args ...string) string {
	b.t.Helper()
	path, err := exec.LookPath("rabbitmqctl")
	if err != nil {
		b.t.Skip("rabbitmqctl is not installed: the RabbitMQ half is skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, append([]string{"-q"}, args...)...).CombinedOutput()
	if err != nil {
		b.t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addUser creates a user with password, tags and full permissions on "/";
// it is deleted when the test ends.
func (b *compatBroker) addUser(name, password string, tags ...string) {
	b.t.Helper()
	if b.isRabbit() {
		b.rabbitmqctl("add_user", name, password)
		b.t.Cleanup(func() { b.rabbitmqctl("delete_user", name) })
		if len(tags) > 0 {
			b.rabbitmqctl(append([]string{"set_user_tags", name}, tags...)...)
		}
		b.rabbitmqctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")
		return
	}
	srv := b.Warren.Server
	must(b.t, srv.PutUser(broker.User{Name: name, PasswordHash: broker.HashPassword(password), Tags: tags}))
	must(b.t, srv.SetPermission(broker.Permission{User: name, Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}))
}

// userURL is the broker's URL with other credentials.
func (b *compatBroker) userURL(user, password string) string {
	b.t.Helper()
	u, err := url.Parse(b.URL)
	if err != nil {
		b.t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// setPolicy sets a policy on "/" for the queues matching pattern; it is
// cleared when the test ends unless cleared before.
func (b *compatBroker) setPolicy(name, pattern string, definition map[string]any) {
	b.t.Helper()
	if b.isRabbit() {
		def, err := json.Marshal(definition)
		if err != nil {
			b.t.Fatal(err)
		}
		b.rabbitmqctl("set_policy", "-p", "/", "--apply-to", "queues", name, pattern, string(def))
		b.t.Cleanup(func() {
			exec.Command("rabbitmqctl", "-q", "clear_policy", "-p", "/", name).Run() // fails if the test cleared it
		})
		return
	}
	p := broker.Policy{Name: name, Pattern: pattern, ApplyTo: "queues", Definition: definition}
	must(b.t, b.Warren.Server.Vhost("/").PutPolicy(p))
}

// clearPolicy removes a policy set with setPolicy.
func (b *compatBroker) clearPolicy(name string) {
	b.t.Helper()
	if b.isRabbit() {
		b.rabbitmqctl("clear_policy", "-p", "/", name)
		return
	}
	if ok, err := b.Warren.Server.Vhost("/").DeletePolicy(name); !ok || err != nil {
		b.t.Fatalf("delete policy %s: %v, %v", name, ok, err)
	}
}
