package mgmtui_test

import (
	"net/http"
	"testing"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/broker/brokertest"
	"github.com/warrenmq/warren/queue"
)

func TestQueueReportsPagedOutMessages(t *testing.T) {
	f := newFixture(t, brokertest.WithConfig(func(c *broker.Config) { c.QueuePaging, c.PagingRatio = queue.Paging{MaxMessages: 5}, 0 }))
	f.expect(http.StatusCreated, put, "/api/queues/%2F/long", map[string]any{"durable": true})
	for i := 0; i < 20; i++ {
		f.expect(http.StatusOK, post, "/api/exchanges/%2F/amq.default/publish", map[string]any{
			"routing_key": "long", "payload": "x", "payload_encoding": "string", "properties": map[string]any{},
		})
	}
	q := f.expect(http.StatusOK, get, "/api/queues/%2F/long", nil).object(t)
	for k, want := range map[string]float64{"messages": 20, "messages_paged_out": 15, "messages_ram": 5} {
		if got := num(t, q, k); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
}
