package queue

import (
	"testing"

	"github.com/warrenmq/warren/amqp"
)

func TestMessagePersistentAndSize(t *testing.T) {
	tests := []struct {
		mode uint8
		want bool
	}{{0, false}, {1, false}, {2, true}}
	for _, tt := range tests {
		m := &Message{Properties: amqp.Properties{DeliveryMode: tt.mode}, Body: []byte("abc")}
		if m.Persistent() != tt.want || m.Size() != 3 {
			t.Errorf("delivery mode %d: Persistent = %v, Size = %d", tt.mode, m.Persistent(), m.Size())
		}
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{DropHead.String(), "drop-head"},
		{RejectPublish.String(), "reject-publish"},
		{RejectPublishDLX.String(), "reject-publish-dlx"},
		{Accepted.String(), "accepted"},
		{Rejected.String(), "rejected"},
		{Dropped.String(), "dropped"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String = %q, want %q", tt.got, tt.want)
		}
	}
}
