package queue

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// maxTableDepth bounds the nesting of tables and arrays, in the encoder and
// the decoder, so that hostile input cannot exhaust the stack.
const maxTableDepth = 64

// Field value tags of the store encoding: the AMQP 0-9-1 (RabbitMQ) type
// letters, so that a value decodes to the Go type it was encoded from.
const (
	tagBool    = 't'
	tagInt8    = 'b'
	tagUint8   = 'B'
	tagInt16   = 's'
	tagUint16  = 'u'
	tagInt32   = 'I'
	tagUint32  = 'i'
	tagInt64   = 'l'
	tagFloat32 = 'f'
	tagFloat64 = 'd'
	tagDecimal = 'D'
	tagString  = 'S'
	tagBytes   = 'x'
	tagArray   = 'A'
	tagTime    = 'T'
	tagTable   = 'F'
	tagVoid    = 'V'
)

// appendTable encodes t as a uvarint entry count followed by (str key, value)
// pairs. A Go int is encoded as int64, a map[string]any as a table.
func appendTable(buf []byte, t amqp.Table, depth int) ([]byte, error) {
	if depth > maxTableDepth {
		return nil, fmt.Errorf("field table nested deeper than %d", maxTableDepth)
	}
	buf = appendUvarint(buf, uint64(len(t)))
	for k, v := range t {
		buf = appendString(buf, k)
		var err error
		if buf, err = appendValue(buf, v, depth); err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
	}
	return buf, nil
}

func appendValue(buf []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, tagVoid), nil
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(buf, tagBool, b), nil
	case int8:
		return append(buf, tagInt8, byte(v)), nil
	case uint8:
		return append(buf, tagUint8, v), nil
	case int16:
		return binary.BigEndian.AppendUint16(append(buf, tagInt16), uint16(v)), nil
	case uint16:
		return binary.BigEndian.AppendUint16(append(buf, tagUint16), v), nil
	case int32:
		return binary.BigEndian.AppendUint32(append(buf, tagInt32), uint32(v)), nil
	case uint32:
		return binary.BigEndian.AppendUint32(append(buf, tagUint32), v), nil
	case int64:
		return binary.BigEndian.AppendUint64(append(buf, tagInt64), uint64(v)), nil
	case int:
		return binary.BigEndian.AppendUint64(append(buf, tagInt64), uint64(int64(v))), nil
	case float32:
		return binary.BigEndian.AppendUint32(append(buf, tagFloat32), math.Float32bits(v)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(buf, tagFloat64), math.Float64bits(v)), nil
	case amqp.Decimal:
		return binary.BigEndian.AppendUint32(append(buf, tagDecimal, v.Scale), uint32(v.Value)), nil
	case string:
		return appendString(append(buf, tagString), v), nil
	case []byte:
		buf = appendUvarint(append(buf, tagBytes), uint64(len(v)))
		return append(buf, v...), nil
	case time.Time:
		return appendTime(append(buf, tagTime), v), nil
	case amqp.Table:
		return appendTable(append(buf, tagTable), v, depth+1)
	case map[string]any:
		return appendTable(append(buf, tagTable), amqp.Table(v), depth+1)
	case []any:
		if depth+1 > maxTableDepth {
			return nil, fmt.Errorf("field array nested deeper than %d", maxTableDepth)
		}
		buf = appendUvarint(append(buf, tagArray), uint64(len(v)))
		for i, e := range v {
			var err error
			if buf, err = appendValue(buf, e, depth+1); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return buf, nil
	}
	return nil, fmt.Errorf("unsupported field value type %T", v)
}

// table decodes a table written by appendTable. An empty table decodes to a
// non-nil empty amqp.Table.
func (d *decoder) table(depth int) amqp.Table {
	if depth > maxTableDepth {
		d.fail(fmt.Errorf("field table nested deeper than %d", maxTableDepth))
		return nil
	}
	n := d.count(2) // a key length byte and a tag at least
	if d.err != nil {
		return nil
	}
	t := make(amqp.Table, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		v := d.value(depth)
		if d.err == nil {
			t[k] = v
		}
	}
	if d.err != nil {
		return nil
	}
	return t
}

func (d *decoder) value(depth int) any {
	tag := d.byte()
	if d.err != nil {
		return nil
	}
	switch tag {
	case tagVoid:
		return nil
	case tagBool:
		switch d.byte() {
		case 0:
			return false
		case 1:
			return true
		}
		d.fail(fmt.Errorf("invalid bool value"))
		return nil
	case tagInt8:
		return int8(d.byte())
	case tagUint8:
		return d.byte()
	case tagInt16:
		return int16(binary.BigEndian.Uint16(d.fixed(2)))
	case tagUint16:
		return binary.BigEndian.Uint16(d.fixed(2))
	case tagInt32:
		return int32(binary.BigEndian.Uint32(d.fixed(4)))
	case tagUint32:
		return binary.BigEndian.Uint32(d.fixed(4))
	case tagInt64:
		return int64(binary.BigEndian.Uint64(d.fixed(8)))
	case tagFloat32:
		return math.Float32frombits(binary.BigEndian.Uint32(d.fixed(4)))
	case tagFloat64:
		return math.Float64frombits(binary.BigEndian.Uint64(d.fixed(8)))
	case tagDecimal:
		scale := d.byte()
		return amqp.Decimal{Scale: scale, Value: int32(binary.BigEndian.Uint32(d.fixed(4)))}
	case tagString:
		return d.string()
	case tagBytes:
		return d.byteField()
	case tagTime:
		return d.time()
	case tagTable:
		return d.table(depth + 1)
	case tagArray:
		if depth+1 > maxTableDepth {
			d.fail(fmt.Errorf("field array nested deeper than %d", maxTableDepth))
			return nil
		}
		n := d.count(1)
		if d.err != nil {
			return nil
		}
		a := make([]any, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			a = append(a, d.value(depth+1))
		}
		return a
	}
	d.fail(fmt.Errorf("unknown field value tag %q", tag))
	return nil
}
