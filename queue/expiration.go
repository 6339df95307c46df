package queue

import (
	"strings"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// maxExpiryMillis is the largest TTL RabbitMQ accepts, in milliseconds
// (ten years): for x-message-ttl, x-expires and the expiration property.
const maxExpiryMillis = 315360000000

// ParseExpiration parses the per-message expiration property: a string of a
// non-negative integer number of milliseconds, at most ten years. Like
// RabbitMQ it accepts a leading sign and leading zeros ("+5", "-0", "007").
// A malformed value is an *amqp.Error 406 PRECONDITION_FAILED with
// RabbitMQ's text, e.g. "invalid expiration 'abc': no_integer" or
// "invalid expiration '-1': {value_negative,-1}". The empty string (which
// RabbitMQ would only see as a present but empty property) is no_integer;
// callers treat "" as "no expiration" before calling.
func ParseExpiration(s string) (time.Duration, error) {
	if ms, ok := parseExpirationMillis(s); ok {
		return time.Duration(ms) * time.Millisecond, nil
	}
	term, _ := erlExpiryTerm(s)
	col := len("invalid expiration '") + len(s) + len("': ")
	return 0, amqp.Errorf(amqp.PreconditionFailed, "invalid expiration '%s': %s", s, term(col))
}

// parseMillisFast accepts the common form, a plain decimal of at most 12
// digits within the limit, without allocating.
func parseMillisFast(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxExpiryMillis
}

// erlExpiryTerm checks s the way Erlang's string:to_integer and RabbitMQ's
// rabbit_basic:parse_expiration do. It returns ok for a valid expiration, or
// a printer of the error term for the column where the term starts.
func erlExpiryTerm(s string) (term func(col int) string, ok bool) {
	rest := s
	neg := false
	if rest != "" && (rest[0] == '+' || rest[0] == '-') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return func(int) string { return "no_integer" }, false
	}
	digits, leftover := strings.TrimLeft(rest[:n], "0"), rest[n:]
	if leftover != "" {
		return func(col int) string { return erlPair("leftover_string", erlString(leftover), col) }, false
	}
	if digits == "" {
		return nil, true // zero, whatever its sign
	}
	if neg {
		return func(col int) string { return erlPair("value_negative", "-"+digits, col) }, false
	}
	if len(digits) > 12 || (len(digits) == 12 && digits > "315360000000") {
		return func(col int) string { return erlPair("value_too_large", digits, col) }, false
	}
	return nil, true
}

// parseExpirationMillis returns the milliseconds of a valid expiration.
func parseExpirationMillis(s string) (int64, bool) {
	if ms, ok := parseMillisFast(s); ok {
		return ms, true
	}
	if _, ok := erlExpiryTerm(s); !ok {
		return 0, false
	}
	rest := strings.TrimLeft(strings.TrimLeft(s, "+-"), "0")
	var n int64
	for i := 0; i < len(rest); i++ {
		n = n*10 + int64(rest[i]-'0')
	}
	return n, true
}
