package amqp

import (
	"encoding/binary"
	"math"
	"sort"
	"time"
)

// maxTableDepth bounds the nesting of tables and arrays when decoding.
const maxTableDepth = 100

// DecodeTable decodes a field table that starts with its 4-byte length and
// returns it with the number of bytes consumed. It never panics and never
// allocates more than b holds.
func DecodeTable(b []byte) (Table, int, error) {
	return decodeTable(b, 0)
}

func decodeTable(b []byte, depth int) (Table, int, error) {
	if depth > maxTableDepth {
		return nil, 0, Errorf(SyntaxError, "field table nested deeper than %d", maxTableDepth)
	}
	if len(b) < 4 {
		return nil, 0, Errorf(SyntaxError, "truncated field table length")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, 0, Errorf(SyntaxError, "field table length %d exceeds the %d bytes left", n, len(b)-4)
	}
	body := b[4 : 4+n]
	t := Table{}
	for off := 0; off < len(body); {
		klen := int(body[off])
		off++
		if klen > len(body)-off {
			return nil, 0, Errorf(SyntaxError, "truncated field name")
		}
		key := string(body[off : off+klen])
		off += klen
		v, used, err := decodeValue(body[off:], depth)
		if err != nil {
			return nil, 0, err
		}
		off += used
		t[key] = v
	}
	return t, 4 + int(n), nil
}

// decodeValue decodes one type-tagged field value.
func decodeValue(b []byte, depth int) (any, int, error) {
	if len(b) < 1 {
		return nil, 0, Errorf(SyntaxError, "truncated field value")
	}
	typ, b := b[0], b[1:]
	need := func(n int) error {
		if len(b) < n {
			return Errorf(SyntaxError, "truncated field value of type '%c'", typ)
		}
		return nil
	}
	switch typ {
	case 't':
		if err := need(1); err != nil {
			return nil, 0, err
		}
		return b[0] != 0, 2, nil
	case 'b':
		if err := need(1); err != nil {
			return nil, 0, err
		}
		return int8(b[0]), 2, nil
	case 'B':
		if err := need(1); err != nil {
			return nil, 0, err
		}
		return b[0], 2, nil
	case 's':
		if err := need(2); err != nil {
			return nil, 0, err
		}
		return int16(binary.BigEndian.Uint16(b)), 3, nil
	case 'u':
		if err := need(2); err != nil {
			return nil, 0, err
		}
		return binary.BigEndian.Uint16(b), 3, nil
	case 'I':
		if err := need(4); err != nil {
			return nil, 0, err
		}
		return int32(binary.BigEndian.Uint32(b)), 5, nil
	case 'i':
		if err := need(4); err != nil {
			return nil, 0, err
		}
		return binary.BigEndian.Uint32(b), 5, nil
	case 'l':
		if err := need(8); err != nil {
			return nil, 0, err
		}
		return int64(binary.BigEndian.Uint64(b)), 9, nil
	case 'f':
		if err := need(4); err != nil {
			return nil, 0, err
		}
		return math.Float32frombits(binary.BigEndian.Uint32(b)), 5, nil
	case 'd':
		if err := need(8); err != nil {
			return nil, 0, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), 9, nil
	case 'D':
		if err := need(5); err != nil {
			return nil, 0, err
		}
		return Decimal{Scale: b[0], Value: int32(binary.BigEndian.Uint32(b[1:]))}, 6, nil
	case 'S', 'x':
		if err := need(4); err != nil {
			return nil, 0, err
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, 0, Errorf(SyntaxError, "field value length %d exceeds the %d bytes left", n, len(b)-4)
		}
		if typ == 'S' {
			return string(b[4 : 4+n]), 5 + int(n), nil
		}
		return append([]byte{}, b[4:4+n]...), 5 + int(n), nil
	case 'A':
		arr, n, err := decodeArray(b, depth+1)
		return arr, 1 + n, err
	case 'T':
		if err := need(8); err != nil {
			return nil, 0, err
		}
		return time.Unix(int64(binary.BigEndian.Uint64(b)), 0).UTC(), 9, nil
	case 'F':
		t, n, err := decodeTable(b, depth+1)
		return t, 1 + n, err
	case 'V':
		return nil, 1, nil
	}
	return nil, 0, Errorf(SyntaxError, "unknown field value type '%c' (0x%02x)", typ, typ)
}

func decodeArray(b []byte, depth int) ([]any, int, error) {
	if depth > maxTableDepth {
		return nil, 0, Errorf(SyntaxError, "field array nested deeper than %d", maxTableDepth)
	}
	if len(b) < 4 {
		return nil, 0, Errorf(SyntaxError, "truncated field array length")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, 0, Errorf(SyntaxError, "field array length %d exceeds the %d bytes left", n, len(b)-4)
	}
	body := b[4 : 4+n]
	arr := []any{}
	for off := 0; off < len(body); {
		v, used, err := decodeValue(body[off:], depth)
		if err != nil {
			return nil, 0, err
		}
		off += used
		arr = append(arr, v)
	}
	return arr, 4 + int(n), nil
}

// AppendTable appends t, with its 4-byte length, keys in sorted order so
// equal tables encode to equal bytes. Values of unsupported Go types are
// written as void ('V').
func AppendTable(buf []byte, t Table) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	if len(t) > 0 {
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			buf = appendShortstr(buf, k)
			buf = AppendFieldValue(buf, t[k])
		}
	}
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf
}

// AppendFieldValue appends one type-tagged field value.
func AppendFieldValue(buf []byte, v any) []byte {
	switch v := v.(type) {
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(buf, 't', b)
	case int8:
		return append(buf, 'b', byte(v))
	case uint8:
		return append(buf, 'B', v)
	case int16:
		return binary.BigEndian.AppendUint16(append(buf, 's'), uint16(v))
	case uint16:
		return binary.BigEndian.AppendUint16(append(buf, 'u'), v)
	case int32:
		return binary.BigEndian.AppendUint32(append(buf, 'I'), uint32(v))
	case uint32:
		return binary.BigEndian.AppendUint32(append(buf, 'i'), v)
	case int64:
		return binary.BigEndian.AppendUint64(append(buf, 'l'), uint64(v))
	case int:
		return binary.BigEndian.AppendUint64(append(buf, 'l'), uint64(int64(v)))
	case float32:
		return binary.BigEndian.AppendUint32(append(buf, 'f'), math.Float32bits(v))
	case float64:
		return binary.BigEndian.AppendUint64(append(buf, 'd'), math.Float64bits(v))
	case Decimal:
		return binary.BigEndian.AppendUint32(append(buf, 'D', v.Scale), uint32(v.Value))
	case string:
		return appendLongstr(append(buf, 'S'), v)
	case []byte:
		buf = binary.BigEndian.AppendUint32(append(buf, 'x'), uint32(len(v)))
		return append(buf, v...)
	case []any:
		buf = append(buf, 'A')
		start := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		for _, e := range v {
			buf = AppendFieldValue(buf, e)
		}
		binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
		return buf
	case time.Time:
		return binary.BigEndian.AppendUint64(append(buf, 'T'), uint64(v.Unix()))
	case Table:
		return AppendTable(append(buf, 'F'), v)
	case map[string]any:
		return AppendTable(append(buf, 'F'), Table(v))
	}
	return append(buf, 'V')
}
