package queue

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// decoder reads the store encoding. The first error sticks: later reads
// return zero values, so callers check err once at the end.
type decoder struct {
	b      []byte
	err    error
	shared bool // strings and byte strings alias b (which must not change)
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// fixed returns the next n (at most 8) bytes, or zeros after an error.
func (d *decoder) fixed(n int) []byte {
	if d.err == nil && len(d.b) < n {
		d.fail(errTruncated)
	}
	if d.err != nil {
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("invalid uvarint: %w", errTruncated))
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(fmt.Errorf("invalid varint: %w", errTruncated))
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count and checks it against the bytes left, given
// the minimum encoded size of one element, so that a hostile count cannot
// cause a huge allocation.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.fail(fmt.Errorf("count %d exceeds the input: %w", n, errTruncated))
		return 0
	}
	return int(n)
}

// span reads a uvarint length and returns that many following bytes,
// aliasing the input.
func (d *decoder) span() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("length %d exceeds the input: %w", n, errTruncated))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string {
	p := d.span()
	if d.shared {
		if len(p) == 0 {
			return ""
		}
		return unsafe.String(&p[0], len(p))
	}
	return string(p)
}

// bytes returns a copy of a length-prefixed byte string (nil when empty).
func (d *decoder) bytes() []byte {
	p := d.span()
	if len(p) == 0 {
		return nil
	}
	if d.shared {
		return p[:len(p):len(p)]
	}
	return append([]byte(nil), p...)
}

// byteField returns a copy of a length-prefixed byte string, never nil, as
// the field value of type binary.
func (d *decoder) byteField() []byte {
	p := d.span()
	if d.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(p)), p...)
}

func appendUvarint(buf []byte, v uint64) []byte { return binary.AppendUvarint(buf, v) }

func appendVarint(buf []byte, v int64) []byte { return binary.AppendVarint(buf, v) }

func appendString(buf []byte, s string) []byte {
	buf = appendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}
