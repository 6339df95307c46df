package amqp

import (
	"encoding/binary"
	"time"
)

// argReader decodes AMQP primitive types from a byte slice. The first
// failure sticks in err (502 SYNTAX_ERROR) and later reads return zero
// values, so generated decoders check once at the end.
type argReader struct {
	b   []byte
	off int
	err error
}

func (r *argReader) fail(what string) {
	if r.err == nil {
		r.err = Errorf(SyntaxError, "truncated or malformed %s at offset %d", what, r.off)
	}
}

// take returns the next n bytes, or nil after a failure.
func (r *argReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail(what)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

func (r *argReader) readOctet() uint8 {
	if b := r.take(1, "octet"); b != nil {
		return b[0]
	}
	return 0
}

func (r *argReader) readShort() uint16 {
	if b := r.take(2, "short"); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *argReader) readLong() uint32 {
	if b := r.take(4, "long"); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *argReader) readLonglong() uint64 {
	if b := r.take(8, "longlong"); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// shortstrBytes returns a short string's bytes without copying.
func (r *argReader) shortstrBytes() []byte {
	n := r.readOctet()
	return r.take(int(n), "shortstr")
}

func (r *argReader) readShortstr() string {
	b := r.shortstrBytes()
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

func (r *argReader) readLongstr() string {
	n := r.readLong()
	if uint64(n) > uint64(len(r.b)-r.off) {
		r.fail("longstr")
		return ""
	}
	b := r.take(int(n), "longstr")
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

func (r *argReader) readTimestamp() time.Time {
	return time.Unix(int64(r.readLonglong()), 0).UTC()
}

func (r *argReader) readTable() Table {
	if r.err != nil {
		return nil
	}
	t, n, err := decodeTable(r.b[r.off:], 0)
	if err != nil {
		r.err = err
		return nil
	}
	r.off += n
	return t
}

func appendOctet(buf []byte, v uint8) []byte { return append(buf, v) }

func appendShort(buf []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(buf, v) }

func appendLong(buf []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(buf, v) }

func appendLonglong(buf []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(buf, v) }

// appendShortstr writes a short string, truncated to 255 bytes as RabbitMQ
// truncates long reply texts.
func appendShortstr(buf []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	buf = append(buf, byte(len(s)))
	return append(buf, s...)
}

func appendLongstr(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

func appendTimestamp(buf []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(buf, uint64(t.Unix()))
}

func appendTable(buf []byte, t Table) []byte { return AppendTable(buf, t) }
