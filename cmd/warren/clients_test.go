package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	rmq "github.com/rabbitmq/amqp091-go"
)

// These tests drive the real binary with clients written in other languages.

const pikaScript = `
import sys, pika
params = pika.URLParameters(sys.argv[1])
conn = pika.BlockingConnection(params)
ch = conn.channel()
q = ch.queue_declare(queue='', exclusive=True).method.queue
ch.basic_publish(exchange='', routing_key=q, body=b'hello from pika',
                 properties=pika.BasicProperties(content_type='text/plain', delivery_mode=2, headers={'k': 'v'}))
method, props, body = ch.basic_get(q, auto_ack=False)
assert body == b'hello from pika', body
assert props.headers == {'k': 'v'}, props.headers
ch.basic_ack(method.delivery_tag)
ch.confirm_delivery()
ch.basic_publish(exchange='', routing_key=q, body=b'confirmed')
for method, props, body in ch.consume(q, inactivity_timeout=5):
    assert body == b'confirmed', body
    ch.basic_ack(method.delivery_tag)
    break
ch.cancel()
ch.close()
conn.close()
print("pika ok")
`

func TestPikaRoundTrip(t *testing.T) {
	if _, err := exec.LookPath("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import pika").Run(); err != nil {
		t.Skip("python3-pika is not installed (apt-get install python3-pika)")
	}
	p := startProcess(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pikaScript, "amqp://guest:guest@"+p.Addr+"/%2F").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pika ok") {
		t.Fatalf("pika script failed: %v\n%s", err, out)
	}
}

func TestRabbitmqCToolsRoundTrip(t *testing.T) {
	for _, tool := range []string{"amqp-declare-queue", "amqp-publish", "amqp-consume", "amqp-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install amqp-tools)", tool)
		}
	}
	p := startProcess(t, t.TempDir())
	url := "amqp://guest:guest@" + p.Addr // rabbitmq-c reads a path of "/" as the vhost ""
	run := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	if got := strings.TrimSpace(run("amqp-declare-queue", "--url", url, "-q", "c-tools", "-d")); got != "c-tools" {
		t.Fatalf("amqp-declare-queue printed %q", got)
	}
	run("amqp-publish", "--url", url, "-r", "c-tools", "-b", "from rabbitmq-c", "-p")
	if got := run("amqp-get", "--url", url, "-q", "c-tools"); got != "from rabbitmq-c" {
		t.Fatalf("amqp-get printed %q", got)
	}
	run("amqp-publish", "--url", url, "-r", "c-tools", "-b", "consumed")
	if got := run("amqp-consume", "--url", url, "-q", "c-tools", "-c", "1", "cat"); got != "consumed" {
		t.Fatalf("amqp-consume printed %q", got)
	}
	// The queue is empty again.
	c, ch := dialChannel(t, p.URL())
	defer c.Close()
	q, err := ch.QueueDeclarePassive("c-tools", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("queue has %d messages left", q.Messages)
	}
}

func TestSigtermClosesClientsAndExitsZero(t *testing.T) {
	p := startProcess(t, t.TempDir())
	c, err := rmq.Dial(p.URL())
	if err != nil {
		t.Fatal(err)
	}
	closed := c.NotifyClose(make(chan *rmq.Error, 1))
	if err := p.stop(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.logText())
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != 320 {
			t.Fatalf("close = %v, want 320 CONNECTION_FORCED", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client not closed")
	}
}
