package amqp

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzz targets' seed corpora run as ordinary tests; `go test -fuzz`
// explores further. Every decoder must return an error, never panic.

func FuzzFrameReader(f *testing.F) {
	f.Add(AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "x", RoutingKey: "k"}))
	f.Add(AppendHeaderFrame(nil, 1, ClassBasic, 3, &Properties{ContentType: "text/plain", Headers: Table{"a": int32(1)}}))
	f.Add(AppendBodyFrames(nil, 1, []byte("abc"), 4096))
	f.Add(AppendHeartbeat(nil))
	f.Add([]byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{8, 0, 1, 0, 0, 0, 0, 0xce})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data), 4096)
		fr.SetMaxFrameSize(4096)
		for i := 0; i < 64; i++ {
			fm, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if fm.Type == FrameMethod {
				DecodeMethod(fm.Payload)
			}
			if fm.Type == FrameHeader {
				var h ContentHeader
				h.Decode(fm.Payload)
			}
		}
	})
}

func FuzzDecodeTable(f *testing.F) {
	f.Add(AppendTable(nil, Table{"s": "v", "n": int64(1), "a": []any{int8(1), Table{"x": nil}}}))
	f.Add(AppendTable(nil, Table{}))
	f.Add([]byte{0, 0, 0, 3, 1, 'k', 'A'})
	f.Add([]byte{0, 0, 0, 6, 1, 'k', 'S', 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, n, err := DecodeTable(data)
		if err != nil {
			return
		}
		if n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		again, _, err := DecodeTable(AppendTable(nil, tab))
		if err != nil {
			t.Fatalf("re-encoded table does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, tab) && !hasNaN(tab) {
			t.Fatalf("unstable round trip: %#v vs %#v", tab, again)
		}
	})
}

// hasNaN reports whether a table holds a NaN, which never equals itself.
func hasNaN(t Table) bool {
	for _, v := range t {
		switch x := v.(type) {
		case float32:
			if x != x {
				return true
			}
		case float64:
			if x != x {
				return true
			}
		case Table:
			if hasNaN(x) {
				return true
			}
		case []any:
			if containsNaN(x) {
				return true
			}
		}
	}
	return false
}

func containsNaN(a []any) bool {
	for _, v := range a {
		if hasNaN(Table{"v": v}) {
			return true
		}
	}
	return false
}

func FuzzDecodeMethod(f *testing.F) {
	for _, m := range allMethods() {
		populate(m, 1)
		f.Add(AppendMethod(nil, m))
	}
	f.Add([]byte{0, 60, 0, 40})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMethod(data)
		if err != nil {
			return
		}
		again, err := DecodeMethod(AppendMethod(nil, m))
		if err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", m.Name(), err)
		}
		if again.Name() != m.Name() {
			t.Fatalf("re-encoded %s decodes as %s", m.Name(), again.Name())
		}
		var d MethodDecoder
		d.Decode(data)
	})
}

func FuzzContentHeader(f *testing.F) {
	f.Add(AppendHeaderFrame(nil, 1, ClassBasic, 10, &Properties{DeliveryMode: 2, Headers: Table{"a": "b"}})[7:])
	f.Add([]byte{0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var h ContentHeader
		h.Decode(data)
	})
}
