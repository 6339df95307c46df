package queue

import "testing"

func TestMaxLength(t *testing.T) {
	tests := []struct {
		name        string
		maxLen      int64
		maxBytes    int64
		overflow    Overflow
		publish     []string
		wantResults []PublishResult
		wantReady   []string
		wantDead    []string
	}{
		{
			name: "drop-head drops oldest", maxLen: 2, maxBytes: -1, overflow: DropHead,
			publish:     []string{"a", "b", "c", "d"},
			wantResults: []PublishResult{Accepted, Accepted, Accepted, Accepted},
			wantReady:   []string{"c", "d"},
			wantDead:    []string{"a:maxlen", "b:maxlen"},
		},
		{
			name: "reject-publish refuses newest", maxLen: 2, maxBytes: -1, overflow: RejectPublish,
			publish:     []string{"a", "b", "c"},
			wantResults: []PublishResult{Accepted, Accepted, Rejected},
			wantReady:   []string{"a", "b"},
		},
		{
			name: "reject-publish-dlx refuses and dead-letters newest", maxLen: 2, maxBytes: -1, overflow: RejectPublishDLX,
			publish:     []string{"a", "b", "c"},
			wantResults: []PublishResult{Accepted, Accepted, Rejected},
			wantReady:   []string{"a", "b"},
			wantDead:    []string{"c:maxlen"},
		},
		{
			name: "drop-head by bytes", maxLen: -1, maxBytes: 5, overflow: DropHead,
			publish:     []string{"aa", "bb", "ccc"},
			wantResults: []PublishResult{Accepted, Accepted, Accepted},
			wantReady:   []string{"bb", "ccc"},
			wantDead:    []string{"aa:maxlen"},
		},
		{
			name: "drop-head until within both limits", maxLen: 3, maxBytes: 4, overflow: DropHead,
			publish:     []string{"a", "b", "c", "dddd"},
			wantResults: []PublishResult{Accepted, Accepted, Accepted, Accepted},
			wantReady:   []string{"dddd"},
			wantDead:    []string{"a:maxlen", "b:maxlen", "c:maxlen"},
		},
		{
			name: "reject-publish by bytes", maxLen: -1, maxBytes: 4, overflow: RejectPublish,
			publish:     []string{"aa", "bbb", "cc"},
			wantResults: []PublishResult{Accepted, Rejected, Accepted},
			wantReady:   []string{"aa", "cc"},
		},
		{
			name: "max-length zero drop-head keeps nothing", maxLen: 0, maxBytes: -1, overflow: DropHead,
			publish:     []string{"a"},
			wantResults: []PublishResult{Accepted},
			wantDead:    []string{"a:maxlen"},
		},
		{
			name: "message larger than max bytes is dropped", maxLen: -1, maxBytes: 2, overflow: DropHead,
			publish:     []string{"abc"},
			wantResults: []PublishResult{Accepted},
			wantDead:    []string{"abc:maxlen"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			cfg := DefaultConfig("q")
			cfg.MaxLength, cfg.MaxLengthBytes, cfg.Overflow = tt.maxLen, tt.maxBytes, tt.overflow
			cfg.HasDeadLetterExchange = true
			q := newTestQueue(t, cfg, r)
			for i, b := range tt.publish {
				if got := q.Publish(msg(b)); got != tt.wantResults[i] {
					t.Fatalf("Publish(%q) = %v, want %v", b, got, tt.wantResults[i])
				}
			}
			wantBodies(t, "dead letters", r.deadLetters(), tt.wantDead)
			wantBodies(t, "ready", getBodies(t, q), tt.wantReady)
		})
	}
}

func TestMaxLengthCountsOnlyReadyMessages(t *testing.T) {
	cfg := DefaultConfig("q")
	cfg.MaxLength = 1
	cfg.Overflow = RejectPublish
	q := newTestQueue(t, cfg, nil)
	publishN(t, q, "a")
	q.Get(false) // a is unacked now
	publishN(t, q, "b")
	if res := q.Publish(msg("c")); res != Rejected {
		t.Fatalf("Publish past max-length = %v, want rejected", res)
	}
}

func TestRejectPublishRejectsEvenWithAConsumerWaiting(t *testing.T) {
	// RabbitMQ checks the limit before trying a consumer.
	cfg := DefaultConfig("q")
	cfg.MaxLength = 0
	cfg.Overflow = RejectPublish
	q := newTestQueue(t, cfg, nil)
	q.AddConsumer(newConsumer("c", -1), ConsumerOptions{})
	if res := q.Publish(msg("a")); res != Rejected {
		t.Fatalf("Publish = %v, want rejected", res)
	}
}

func TestDropHeadDeliversDirectlyToAConsumerWithCredit(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.MaxLength = 0
	cfg.HasDeadLetterExchange = true
	q := newTestQueue(t, cfg, r)
	c := newConsumer("c", -1)
	q.AddConsumer(c, ConsumerOptions{})
	publishN(t, q, "a")
	wantBodies(t, "delivered", c.bodies(), []string{"a"})
	wantBodies(t, "dead letters", r.deadLetters(), nil)
}

func TestRequeueAppliesDropHead(t *testing.T) {
	r := newRecorder()
	cfg := DefaultConfig("q")
	cfg.MaxLength = 1
	cfg.HasDeadLetterExchange = true
	q := newTestQueue(t, cfg, r)
	publishN(t, q, "a")
	a, _, _ := q.Get(false)
	publishN(t, q, "b")
	q.Requeue([]*Entry{a}) // a goes back to the head, and is dropped from it
	wantBodies(t, "dead letters", r.deadLetters(), []string{"a:maxlen"})
	wantBodies(t, "ready", getBodies(t, q), []string{"b"})
}

func TestReadyBytesTracksBodies(t *testing.T) {
	q := newTestQueue(t, DefaultConfig("q"), nil)
	publishN(t, q, "abc", "de")
	if got := q.ReadyBytes(); got != 5 {
		t.Fatalf("ReadyBytes = %d, want 5", got)
	}
	q.Get(false)
	if got := q.ReadyBytes(); got != 2 {
		t.Fatalf("ReadyBytes after Get = %d, want 2", got)
	}
}
