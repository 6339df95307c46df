package broker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	rmq "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/broker/meta"
	"github.com/warrenmq/warren/exchange"
)

// laggingLog is a metadata log that stands for a cluster node behind the
// others: ops "committed elsewhere" wait in pending until CatchUp applies
// them, as a node catches up with its leader.
type laggingLog struct {
	*meta.Local
	fresh bool

	mu       sync.Mutex
	pending  []meta.Op
	catchUps int
	closed   bool
}

// elsewhere records op as committed by another node, not yet applied here.
func (l *laggingLog) elsewhere(op meta.Op) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, op)
}

func (l *laggingLog) Fresh() bool { return l.fresh }

func (l *laggingLog) CatchUp(ctx context.Context) error {
	l.mu.Lock()
	ops := l.pending
	l.pending = nil
	l.catchUps++
	l.mu.Unlock()
	for _, op := range ops {
		if err := l.Local.Propose(ctx, op); err != nil {
			return fmt.Errorf("catch up with %s: %w", op, err)
		}
	}
	return nil
}

func (l *laggingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func (l *laggingLog) counts() (catchUps int, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.catchUps, l.closed
}

// startLagging starts a broker whose metadata log is a laggingLog.
func startLagging(t *testing.T, fresh bool) (*brokertest.Broker, *laggingLog) {
	t.Helper()
	var lg *laggingLog
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.MetaLog = func(st meta.Store, a meta.Applier) (meta.Log, error) {
			local, err := meta.OpenLocal(st, a, 0)
			if err != nil {
				return nil, err
			}
			lg = &laggingLog{Local: local, fresh: fresh}
			return lg, nil
		}
	}))
	return b, lg
}

// TestMetaLogOptionDefaultsOnlyWhenFresh checks that a log given through
// Config.MetaLog gets the default vhost and user only when it says it is
// fresh (the node that starts a cluster), not on every node.
func TestMetaLogOptionDefaultsOnlyWhenFresh(t *testing.T) {
	b, _ := startLagging(t, true)
	dial(t, b.URL).Close()

	b2, _ := startLagging(t, false)
	if b2.Server.Vhost("/") != nil {
		t.Fatal("a log that is not fresh got the default vhost")
	}
	if _, err := rmq.Dial(b2.URL); err == nil {
		t.Fatal("guest logged in on a node that never got the default user")
	}
}

// TestLookAgainAfterMiss checks read-your-writes on a node that lags: a
// passive declare, consume, get, publish and exclusive bind that miss ask
// the log to catch up and look again before answering 404, so objects
// another node confirmed are found; a real miss is still 404; a user and a
// vhost added elsewhere can log in; Close closes the log.
func TestLookAgainAfterMiss(t *testing.T) {
	b, lg := startLagging(t, true)
	ch := openChannel(t, dial(t, b.URL))

	lg.elsewhere(meta.DeclareQueue{Queue: meta.Queue{Vhost: "/", Name: "q1", Durable: true}})
	if _, err := ch.QueueDeclarePassive("q1", true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare of a queue confirmed elsewhere: %v", err)
	}
	lg.elsewhere(meta.DeclareExchange{Exchange: meta.Exchange{Vhost: "/", Name: "x1", Type: "fanout", Durable: true}})
	must(t, ch.ExchangeDeclarePassive("x1", "fanout", true, false, false, false, nil))

	lg.elsewhere(meta.DeclareExchange{Exchange: meta.Exchange{Vhost: "/", Name: "x2", Type: "fanout"}})
	lg.elsewhere(meta.DeclareQueue{Queue: meta.Queue{Vhost: "/", Name: "q2"}})
	lg.elsewhere(meta.Bind{Binding: meta.Binding{Vhost: "/", Binding: exchange.Binding{Source: "x2", Destination: exchange.Destination{Name: "q2"}}}})
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan rmq.Confirmation, 1))
	must(t, ch.Publish("x2", "", true, false, rmq.Publishing{Body: []byte("hi")}))
	if c := <-confirms; !c.Ack {
		t.Fatal("publish to an exchange confirmed elsewhere was not acked")
	}
	if _, ok, err := ch.Get("q2", true); err != nil || !ok {
		t.Fatalf("get from a queue confirmed elsewhere: ok=%v err=%v", ok, err)
	}

	lg.elsewhere(meta.DeclareQueue{Queue: meta.Queue{Vhost: "/", Name: "q3"}})
	if _, err := ch.Consume("q3", "", true, false, false, false, nil); err != nil {
		t.Fatalf("consume from a queue confirmed elsewhere: %v", err)
	}

	lg.elsewhere(meta.DeclareExchange{Exchange: meta.Exchange{Vhost: "/", Name: "x3", Type: "direct"}})
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	must(t, ch.QueueBind(q.Name, "k", "x3", false, nil))

	before, _ := lg.counts()
	_, err = ch.QueueDeclarePassive("nowhere", true, false, false, false, nil)
	expectCode(t, err, 404)
	if after, _ := lg.counts(); after != before+1 {
		t.Fatalf("a miss caught up %d times, want once", after-before)
	}

	lg.elsewhere(meta.AddVhost{Name: "v2"})
	lg.elsewhere(meta.PutUser{User: meta.User{Name: "app", PasswordHash: broker.HashPassword("pw")}})
	lg.elsewhere(meta.SetPermission{Permission: meta.Permission{User: "app", Vhost: "v2", Configure: ".*", Write: ".*", Read: ".*"}})
	url := strings.Replace(b.URL, "guest:guest", "app:pw", 1) + "v2"
	c, err := rmq.Dial(url)
	if err != nil {
		t.Fatalf("log in as a user added elsewhere: %v", err)
	}
	c.Close()

	b.Stop()
	if _, closed := lg.counts(); !closed {
		t.Fatal("Close did not close the metadata log")
	}
}
