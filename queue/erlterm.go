package queue

import (
	"strconv"
	"strings"
)

// RabbitMQ's error texts embed Erlang terms printed with ~p. The helpers here
// print the few shapes those texts use, byte for byte, so that clients that
// match on reply texts see what RabbitMQ would send.

// erlString prints s as Erlang's ~p prints the list of its bytes: a quoted
// string with escapes when every byte is printable in Latin-1, otherwise a
// list of integers. The empty string prints as [].
func erlString(s string) string {
	if s == "" {
		return "[]"
	}
	for i := 0; i < len(s); i++ {
		if !erlPrintable(s[i]) {
			var b strings.Builder
			b.WriteByte('[')
			for j := 0; j < len(s); j++ {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(int(s[j])))
			}
			b.WriteByte(']')
			return b.String()
		}
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case 0x1b:
			b.WriteString(`\e`)
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// erlPrintable reports whether io_lib treats the byte as a printable Latin-1
// character.
func erlPrintable(c byte) bool {
	switch {
	case c >= 32 && c <= 126, c >= 160:
		return true
	case c == '\n', c == '\r', c == '\t', c == '\v', c == '\b', c == '\f', c == 0x1b:
		return true
	}
	return false
}

// erlPair prints the 2-tuple {first,second} as ~p does when the term starts
// at column col of a line of width 80: on one line if it fits, otherwise with
// the second element on the next line, aligned after the opening brace.
func erlPair(first, second string, col int) string {
	const lineWidth = 80
	flat := "{" + first + "," + second + "}"
	if col+len(flat) < lineWidth-1 {
		return flat
	}
	return "{" + first + ",\n" + strings.Repeat(" ", col+1) + second + "}"
}

// amqpInt returns the value of an AMQP integer field of any width.
func amqpInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	}
	return 0, false
}
