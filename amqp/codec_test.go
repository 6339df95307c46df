package amqp

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// allMethods returns one zero value of every method the generated code knows.
func allMethods() []Method {
	var out []Method
	for class := uint16(0); class <= 100; class++ {
		for method := uint16(0); method <= 200; method++ {
			if m := newMethod(class, method); m != nil {
				out = append(out, m)
			}
		}
	}
	return out
}

// populate sets every field of a method struct to a distinct non-zero
// value, alternating booleans so that bit packing is exercised.
func populate(m Method, seed int) {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("value of " + name)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(seed*31+i+1) & (1<<(8*f.Type().Size()) - 1))
		case reflect.Bool:
			f.SetBool((i+seed)%2 == 0)
		case reflect.Map:
			f.Set(reflect.ValueOf(Table{"field": name, "n": int32(i)}))
		}
	}
}

func TestEveryMethodRoundTrips(t *testing.T) {
	methods := allMethods()
	seen := map[string]bool{}
	for i, m := range methods {
		populate(m, i)
		name := reflect.TypeOf(m).Elem().Name()
		seen[name] = true
		frame := AppendMethodFrame(nil, 3, m)
		fr := NewFrameReader(bytes.NewReader(frame), 4096)
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: read frame: %v", name, err)
		}
		if f.Type != FrameMethod || f.Channel != 3 {
			t.Fatalf("%s: frame type %d channel %d", name, f.Type, f.Channel)
		}
		got, err := DecodeMethod(f.Payload)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s round trip:\n got %+v\nwant %+v", name, got, m)
		}
		if got.Name() == "" || got.ClassID() != m.ClassID() || got.MethodID() != m.MethodID() {
			t.Fatalf("%s: ids or name differ", name)
		}
	}
	for _, n := range methodNames {
		if !seen[n] {
			t.Errorf("method %s is not reachable through newMethod", n)
		}
	}
	if len(seen) != len(methodNames) || len(methodNames) < 60 {
		t.Fatalf("%d methods reachable, %d generated", len(seen), len(methodNames))
	}
}

func TestEveryFieldTypeRoundTrips(t *testing.T) {
	ts := time.Unix(1700000000, 0).UTC()
	table := Table{
		"t": true, "f-false": false, "b": int8(-5), "B": uint8(250), "s": int16(-300), "u": uint16(60000),
		"I": int32(-70000), "i": uint32(4000000000), "l": int64(-1 << 40), "f": float32(1.25), "d": math.Pi,
		"D": Decimal{Scale: 3, Value: -12345}, "S": "long string ✓", "x": []byte{0, 1, 2, 255}, "T": ts,
		"V": nil, "A": []any{"a", int32(1), []any{true, nil}, Table{"in": "array"}},
		"F": Table{"nested": Table{"deeper": int64(7)}}, "empty-table": Table{}, "empty-array": []any{},
	}
	enc := AppendTable(nil, table)
	got, n, err := DecodeTable(enc)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(enc) {
		t.Fatalf("consumed %d of %d bytes", n, len(enc))
	}
	if !reflect.DeepEqual(got, table) {
		t.Fatalf("table round trip:\n got %#v\nwant %#v", got, table)
	}
	if !bytes.Equal(AppendTable(nil, got), enc) {
		t.Fatal("re-encoding differs")
	}
	// A Go int is written as a long.
	if got, _, _ := DecodeTable(AppendTable(nil, Table{"n": 5})); got["n"] != int64(5) {
		t.Fatalf("int encoded as %T", got["n"])
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	p := Properties{
		ContentType: "application/json", ContentEncoding: "gzip", Headers: Table{"h": "v"},
		DeliveryMode: 2, Priority: 9, CorrelationID: "c", ReplyTo: "r", Expiration: "1000",
		MessageID: "m", Timestamp: time.Unix(1234567890, 0).UTC(), Type: "t", UserID: "u", AppID: "a", ClusterID: "cl",
	}
	frame := AppendHeaderFrame(nil, 1, ClassBasic, 42, &p)
	f, err := NewFrameReader(bytes.NewReader(frame), 4096).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	var h ContentHeader
	if err := h.Decode(f.Payload); err != nil {
		t.Fatal(err)
	}
	if h.ClassID != ClassBasic || h.BodySize != 42 || !reflect.DeepEqual(h.Properties, p) {
		t.Fatalf("header round trip: %+v", h)
	}
	// No properties: flags zero, nothing else.
	var empty ContentHeader
	if err := empty.Decode(AppendHeaderFrame(nil, 1, ClassBasic, 0, &Properties{})[7:]); err != nil || !reflect.DeepEqual(empty.Properties, Properties{}) {
		t.Fatalf("empty properties: %+v %v", empty.Properties, err)
	}
}

func TestBodyIsSplitByFrameMax(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 10000)
	frames := AppendBodyFrames(nil, 1, body, 4096)
	fr := NewFrameReader(bytes.NewReader(frames), 4096)
	fr.SetMaxFrameSize(4096)
	var got []byte
	count := 0
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Payload) > 4096-8 {
			t.Fatalf("body frame payload of %d bytes exceeds frame-max", len(f.Payload))
		}
		got = append(got, f.Payload...)
		count++
	}
	if !bytes.Equal(got, body) || count != 3 {
		t.Fatalf("%d frames, %d bytes", count, len(got))
	}
	if len(AppendBodyFrames(nil, 1, nil, 4096)) != 0 {
		t.Fatal("an empty body produced frames")
	}
}

func TestFrameReaderErrors(t *testing.T) {
	valid := AppendMethodFrame(nil, 1, &ChannelOpen{})
	badEnd := append([]byte{}, valid...)
	badEnd[len(badEnd)-1] = 0
	cases := []struct {
		name  string
		input []byte
		max   uint32
		code  uint16
		err   error
	}{
		{"oversize", AppendFrame(nil, FrameBody, 1, make([]byte, 5000)), 4096, FrameError, nil},
		{"bad frame-end", badEnd, 0, FrameError, nil},
		{"unknown type", AppendFrame(nil, 9, 1, nil), 0, FrameError, nil},
		{"heartbeat on a channel", AppendFrame(nil, FrameHeartbeat, 2, nil), 0, UnexpectedFrame, nil},
		{"heartbeat with a payload", AppendFrame(nil, FrameHeartbeat, 0, []byte{1, 2}), 0, FrameError, nil},
		{"truncated header", valid[:5], 0, 0, io.ErrUnexpectedEOF},
		{"truncated payload", valid[:len(valid)-2], 0, 0, io.ErrUnexpectedEOF},
		{"empty", nil, 0, 0, io.EOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tc.input), 4096)
			if tc.max != 0 {
				fr.SetMaxFrameSize(tc.max)
			}
			_, err := fr.ReadFrame()
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("err = %v, want code %d", err, tc.code)
			}
		})
	}
}

func TestMalformedMethodsAreProtocolErrors(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		code    uint16
	}{
		{"too short", []byte{0, 10}, SyntaxError},
		{"unknown method", []byte{0, 99, 0, 1}, CommandInvalid},
		{"truncated arguments", []byte{0, 10, 0, 50, 1}, SyntaxError},
		{"table longer than the frame", append([]byte{0, 50, 0, 10, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff), SyntaxError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMethod(tc.payload)
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("err = %v, want code %d", err, tc.code)
			}
		})
	}
}

func TestMethodDecoderReusesHotMethodsWithoutAllocating(t *testing.T) {
	payload := AppendMethod(nil, &BasicPublish{Exchange: "amq.direct", RoutingKey: "key", Mandatory: true})
	var d MethodDecoder
	first, err := d.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if p := first.(*BasicPublish); p.Exchange != "amq.direct" || p.RoutingKey != "key" || !p.Mandatory {
		t.Fatalf("decoded %+v", p)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := d.Decode(payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("decoding a publish allocates %.1f times", allocs)
	}
	ack := AppendMethod(nil, &BasicAck{DeliveryTag: 7, Multiple: true})
	if m, _ := d.Decode(ack); m.(*BasicAck).DeliveryTag != 7 || !m.(*BasicAck).Multiple {
		t.Fatalf("ack decoded as %+v", m)
	}
}

func TestGeneratedCodeIsUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "spec_gen.go")
	cmd := exec.Command("go", "run", "./internal/gen", "-spec", "spec/amqp0-9-1.stripped.extended.xml", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, msg)
	}
	want, err := os.ReadFile("spec_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("spec_gen.go differs from the generator's output: run go generate ./amqp")
	}
}
