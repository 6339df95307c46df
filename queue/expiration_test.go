package queue

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

func TestParseExpirationAcceptsErlangIntegers(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"1500", 1500 * time.Millisecond},
		{"4294967296", 4294967296 * time.Millisecond},
		{"315360000000", 315360000000 * time.Millisecond},
		{"+5", 5 * time.Millisecond},
		{"-0", 0},
		{"-00", 0},
		{"00012", 12 * time.Millisecond},
		{"0000000000000000007", 7 * time.Millisecond},
	}
	for _, tt := range tests {
		got, err := ParseExpiration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseExpiration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// The expected texts were captured from RabbitMQ 3.10.8 (the channel
// close reason for a basic.publish with that expiration), before its
// truncation of reply texts to 255 bytes.
func TestParseExpirationErrorsLikeRabbitMQ(t *testing.T) {
	const p = "PRECONDITION_FAILED - invalid expiration "
	tests := []struct {
		in, want string
	}{
		{"-1", p + "'-1': {value_negative,-1}"},
		{"abc", p + "'abc': no_integer"},
		{"", p + "'': no_integer"},
		{"+", p + "'+': no_integer"},
		{" 5", p + "' 5': no_integer"},
		{"1.5", p + `'1.5': {leftover_string,".5"}`},
		{"5 ", p + `'5 ': {leftover_string," "}`},
		{"1e3", p + `'1e3': {leftover_string,"e3"}`},
		{"1\x01", p + "'1\x01': {leftover_string,[1]}"},
		{"1\x7f", p + "'1\x7f': {leftover_string,[127]}"},
		{"1\n", p + "'1\n': {leftover_string,\"\\n\"}"},
		{"1\t", p + "'1\t': {leftover_string,\"\\t\"}"},
		{"1\x1b", p + "'1\x1b': {leftover_string,\"\\e\"}"},
		{"1é", p + "'1é': {leftover_string,\"é\"}"},
		{`1"\`, p + `'1"\': {leftover_string,"\"\\"}`},
		{"1099511627776", p + "'1099511627776': {value_too_large,1099511627776}"},
		{"315360000001", p + "'315360000001': {value_too_large,315360000001}"},
		// Erlang's pretty printer breaks the term when it passes the
		// 80-column line.
		{"1" + strings.Repeat("x", 17), p + "'1" + strings.Repeat("x", 17) + `': {leftover_string,"` + strings.Repeat("x", 17) + `"}`},
		{"1" + strings.Repeat("x", 18), p + "'1" + strings.Repeat("x", 18) + "': {leftover_string,\n" + strings.Repeat(" ", 43) + `"` + strings.Repeat("x", 18) + `"}`},
		{"1" + strings.Repeat("x", 30), p + "'1" + strings.Repeat("x", 30) + "': {leftover_string,\n" + strings.Repeat(" ", 55) + `"` + strings.Repeat("x", 30) + `"}`},
		{"9999999999999999999", p + "'9999999999999999999': {value_too_large,\n" + strings.Repeat(" ", 43) + "9999999999999999999}"},
		{"99999999999999999999", p + "'99999999999999999999': {value_too_large,\n" + strings.Repeat(" ", 44) + "99999999999999999999}"},
		{"-9999999999999999999", p + "'-9999999999999999999': {value_negative,\n" + strings.Repeat(" ", 44) + "-9999999999999999999}"},
		{"-99999999999999999999", p + "'-99999999999999999999': {value_negative,\n" + strings.Repeat(" ", 45) + "-99999999999999999999}"},
	}
	for _, tt := range tests {
		_, err := ParseExpiration(tt.in)
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
			t.Errorf("ParseExpiration(%q) error = %v, want 406", tt.in, err)
			continue
		}
		if ae.Text != tt.want {
			t.Errorf("ParseExpiration(%q) text\n%q\nwant\n%q", tt.in, ae.Text, tt.want)
		}
	}
}

func TestParseExpirationDoesNotAllocateForValidInput(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseExpiration("60000"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseExpiration allocates %v times", allocs)
	}
}
