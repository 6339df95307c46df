package main

import (
	"path/filepath"
	"strings"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"
)

// TestDefinitionsFileAtStart starts the binary with a definitions file
// exported by RabbitMQ 3.10: its vhost, user, policy, queue and bindings
// exist, and its user logs in with its RabbitMQ password.
func TestDefinitionsFileAtStart(t *testing.T) {
	file, err := filepath.Abs("../../mgmtui/testdata/rabbitmq-3.10-definitions.json")
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, t.TempDir(), "--definitions", file)
	conn, err := rmq.Dial(strings.Replace(p.URL(), "guest:guest", "app:app-secret", 1) + "shop")
	if err != nil {
		t.Fatalf("the imported user cannot log in: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive("orders.eu", true, false, false, false, nil)
	if err != nil || q.Name != "orders.eu" {
		t.Fatalf("imported queue: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 1))
	if err := ch.Publish("events", "order.eu.42", false, false, rmq.Publishing{Body: []byte("order")}); err != nil {
		t.Fatal(err)
	}
	if c := <-confirms; !c.Ack {
		t.Fatal("publish nacked")
	}
	d, ok, err := ch.Get("orders.eu", true)
	if err != nil || !ok || string(d.Body) != "order" {
		t.Fatalf("routing through the imported binding: %v %v %q", ok, err, d.Body)
	}

	if out, err := runBinary("--amqp-listen", "127.0.0.1:0", "--mgmt-listen", "", "--data-dir", t.TempDir(), "--definitions", "/nonexistent.json"); err == nil || !strings.Contains(out, "--definitions") {
		t.Fatalf("a missing definitions file: err %v, output %q", err, out)
	}
}
