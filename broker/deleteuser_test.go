package broker_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"

	rmq "github.com/rabbitmq/amqp091-go"
)

// TestDeleteUserClosesConnectionsEvenMidHandshake deletes a user while
// connections of that user are being opened: every connection of the user
// ends up closed or refused, none slips through as a deleted user, and the
// race detector sees no unsynchronised access to a connection's user.
func TestDeleteUserClosesConnectionsEvenMidHandshake(t *testing.T) {
	b := brokertest.Start(t)
	srv := b.Server
	url := strings.Replace(b.URL, "guest:guest", "doomed:pw", 1)
	for round := range 5 {
		must(t, srv.PutUser(broker.User{Name: "doomed", PasswordHash: broker.HashPassword("pw")}))
		must(t, srv.SetPermission(broker.Permission{User: "doomed", Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"}))
		var wg sync.WaitGroup
		conns := make(chan *rmq.Connection, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if c, err := rmq.Dial(url); err == nil {
					conns <- c
				}
			}()
		}
		if ok, err := srv.DeleteUser("doomed"); !ok || err != nil {
			t.Fatalf("round %d: delete user: %v, %v", round, ok, err)
		}
		wg.Wait()
		close(conns)
		for c := range conns {
			closed := c.NotifyClose(make(chan *rmq.Error, 1))
			if !c.IsClosed() {
				if e := <-closed; e != nil && e.Code != 320 {
					t.Fatalf("round %d: connection closed with %d %s, want 320", round, e.Code, e.Reason)
				}
			}
		}
		waitFor(t, "every connection of the deleted user to go", func() bool {
			for _, ci := range srv.ConnectionInfos() {
				if ci.User == "doomed" {
					return false
				}
			}
			return true
		})
	}
}
