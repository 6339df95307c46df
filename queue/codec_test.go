package queue

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

func fullMessage() *Message {
	return &Message{
		ID:         1<<40 + 7,
		Exchange:   "amq.topic",
		RoutingKey: "a.b.c",
		Body:       []byte("hello, world"),
		Properties: amqp.Properties{
			ContentType:     "text/plain",
			ContentEncoding: "gzip",
			Headers: amqp.Table{
				"bool": true, "i8": int8(-8), "u8": uint8(8), "i16": int16(-16), "u16": uint16(16),
				"i32": int32(-32), "u32": uint32(32), "i64": int64(-64), "f32": float32(1.5), "f64": 2.25,
				"dec": amqp.Decimal{Scale: 2, Value: -12345}, "str": "s", "bin": []byte{0, 1, 2}, "empty-bin": []byte{},
				"time": time.Unix(1700000000, 0).UTC(), "void": nil,
				"table": amqp.Table{"nested": amqp.Table{"deep": "x"}},
				"array": []any{"a", int32(1), []any{int64(2)}, amqp.Table{}},
			},
			DeliveryMode:  2,
			Priority:      9,
			CorrelationID: "corr",
			ReplyTo:       "reply",
			Expiration:    "60000",
			MessageID:     "mid",
			Timestamp:     time.Unix(1700000001, 0).UTC(),
			Type:          "type",
			UserID:        "guest",
			AppID:         "app",
			ClusterID:     "cluster",
		},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
	}{
		{"all properties and field types", fullMessage()},
		{"minimal", &Message{ID: 1}},
		{"empty headers table", &Message{ID: 2, Properties: amqp.Properties{Headers: amqp.Table{}}}},
		{"large body", &Message{ID: 3, Body: bytes.Repeat([]byte("z"), 1<<20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.m) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, tt.m)
			}
			if len(tt.m.Body) > 0 && &got.Body[0] == &b[len(b)-len(tt.m.Body)] {
				t.Fatal("decoded body aliases the input")
			}
		})
	}
}

func TestMarshalConvertsGoIntAndRejectsUnsupportedTypes(t *testing.T) {
	m := &Message{Properties: amqp.Properties{Headers: amqp.Table{"n": 5, "m": map[string]any{"k": "v"}}}}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Properties.Headers["n"] != int64(5) || !reflect.DeepEqual(got.Properties.Headers["m"], amqp.Table{"k": "v"}) {
		t.Fatalf("headers = %v", got.Properties.Headers)
	}
	bad := &Message{Properties: amqp.Properties{Headers: amqp.Table{"c": make(chan int)}}}
	if _, err := bad.MarshalBinary(); err == nil || !strings.Contains(err.Error(), "unsupported field value type chan int") {
		t.Fatalf("MarshalBinary of a channel value = %v", err)
	}
	deep := amqp.Table{}
	for i := 0; i < maxTableDepth+2; i++ {
		deep = amqp.Table{"t": deep}
	}
	if _, err := (&Message{Properties: amqp.Properties{Headers: deep}}).MarshalBinary(); err == nil {
		t.Fatal("MarshalBinary of an over-deep table succeeded")
	}
}

func TestAppendBinaryAppends(t *testing.T) {
	m := &Message{ID: 5, Body: []byte("b")}
	buf, err := m.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte("prefix")) {
		t.Fatal("prefix lost")
	}
	got, err := UnmarshalMessage(buf[len("prefix"):])
	if err != nil || got.ID != 5 || string(got.Body) != "b" {
		t.Fatalf("decode = %+v, %v", got, err)
	}
}

func TestUnmarshalRejectsMalformedInput(t *testing.T) {
	good, err := fullMessage().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown version", []byte{9}},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"bad property flags", []byte{1, 0, 0, 0, 0xff, 0xff, 0x7f}},
		{"huge table count", []byte{1, 0, 0, 0, 0x80, 0x40, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad nanoseconds", []byte{1, 0, 0, 0, 0x40, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}},
	}
	for i := 1; i < len(good); i++ {
		tests = append(tests, struct {
			name string
			in   []byte
		}{"truncated", good[:i]})
	}
	for _, tt := range tests {
		if m, err := UnmarshalMessage(tt.in); err == nil {
			t.Fatalf("%s (%d bytes): decoded %+v", tt.name, len(tt.in), m)
		}
	}
}

func FuzzUnmarshalMessage(f *testing.F) {
	for _, m := range []*Message{fullMessage(), {ID: 1}, {Body: []byte("x")}} {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1, 0, 0, 0, 0x20, 0x01, 0x01, 'k', 'A', 0x01, 'F', 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMessage(b)
		if err != nil {
			return
		}
		// What decodes must encode back to something that decodes equal.
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode of a decoded message: %v", err)
		}
		m2, err := UnmarshalMessage(again)
		if err != nil {
			t.Fatalf("decode of re-encoded message: %v", err)
		}
		if !reflect.DeepEqual(m, m2) && !hasNaN(m) {
			t.Fatalf("re-encoding changed the message:\n%+v\n%+v", m, m2)
		}
	})
}

// hasNaN reports whether the headers hold a NaN float, which DeepEqual never
// finds equal to itself.
func hasNaN(m *Message) bool {
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case float32:
			return v != v
		case float64:
			return v != v
		case amqp.Table:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(m.Properties.Headers)
}
