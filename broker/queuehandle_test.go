package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/warrenmq/warren/queue"
)

// recordingQueue is a QueueHandle that only records what is settled with
// it, as a queue on another node would see it: no *queue.Queue behind it.
type recordingQueue struct {
	QueueHandle // unused methods
	settled     []string
}

func (q *recordingQueue) Settle(how Settlement, entries []QueueEntry) {
	for _, e := range entries {
		q.settled = append(q.settled, fmt.Sprintf("%d:%s", how, e.(*remoteEntry).id))
	}
}

// remoteEntry is a QueueEntry that is not a *queue.Entry.
type remoteEntry struct{ id string }

func (e *remoteEntry) Message() *queue.Message { return nil }
func (e *remoteEntry) Redelivered() bool       { return false }

func TestSettleGroupsDeliveriesByTheirHandleInTagOrder(t *testing.T) {
	a, b := &recordingQueue{}, &recordingQueue{}
	var l unackedList
	for i, q := range []*recordingQueue{a, b, a, b, a} {
		tag := uint64(i + 1)
		l.push(unackedDelivery{tag: tag, queue: q, entry: &remoteEntry{id: fmt.Sprint("m", tag)}})
	}
	tests := []struct {
		tag      uint64
		multiple bool
		how      Settlement
		wantA    []string
		wantB    []string
	}{
		{tag: 2, how: SettleReject, wantB: []string{"2:m2"}},
		{tag: 4, multiple: true, how: SettleAck, wantA: []string{"0:m1", "0:m3"}, wantB: []string{"0:m4"}},
		{tag: 0, multiple: true, how: SettleRequeue, wantA: []string{"1:m5"}},
	}
	for _, tt := range tests {
		a.settled, b.settled = nil, nil
		ds, ok := l.take(tt.tag, tt.multiple, nil)
		if !ok {
			t.Fatalf("tag %d multiple=%v: not unacked", tt.tag, tt.multiple)
		}
		settleByQueue(ds, nil, tt.how)
		if !slices.Equal(a.settled, tt.wantA) || !slices.Equal(b.settled, tt.wantB) {
			t.Errorf("tag %d multiple=%v: a settled %v, b settled %v; want %v and %v",
				tt.tag, tt.multiple, a.settled, b.settled, tt.wantA, tt.wantB)
		}
	}
	if l.len() != 0 {
		t.Fatalf("%d deliveries left unacked", l.len())
	}
}
