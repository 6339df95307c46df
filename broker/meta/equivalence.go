package meta

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/amqp"
)

// Equivalence: a redeclared exchange or queue must match the existing
// one, with RabbitMQ's errors.

func checkExchangeEquivalent(cur, e Exchange) error {
	ineq := func(arg string, got, have any) error {
		return amqp.Errorf(amqp.PreconditionFailed,
			"inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, e.Name, e.Vhost, got, have)
	}
	switch {
	case cur.Type != e.Type:
		return ineq("type", e.Type, cur.Type)
	case cur.Durable != e.Durable:
		return ineq("durable", e.Durable, cur.Durable)
	case cur.AutoDelete != e.AutoDelete:
		return ineq("auto_delete", e.AutoDelete, cur.AutoDelete)
	case cur.Internal != e.Internal:
		return ineq("internal", e.Internal, cur.Internal)
	}
	// Of the arguments RabbitMQ compares only alternate-exchange.
	return checkArgsEquivalent("exchange", e.Vhost, e.Name, cur.Args, e.Args, []string{"alternate-exchange"})
}

// queueEquivalenceArgs are the arguments RabbitMQ compares when a classic
// queue is redeclared, in its order.
var queueEquivalenceArgs = []string{
	"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
	"x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
	"x-queue-version", "x-single-active-consumer", "x-queue-type", "x-queue-master-locator",
}

// CheckQueueEquivalent checks a redeclare of an existing queue (cur, which
// is exclusive or not) as want, with RabbitMQ's errors and in its order:
// exclusivity, durable, auto_delete, then the arguments.
func CheckQueueEquivalent(cur Queue, curExclusive bool, want Queue, wantExclusive bool) error {
	ineq := func(arg string, got, have any) error {
		return amqp.Errorf(amqp.PreconditionFailed,
			"inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, want.Name, want.Vhost, got, have)
	}
	switch {
	case curExclusive != wantExclusive:
		return LockedQueue(want.Vhost, want.Name)
	case cur.Durable != want.Durable:
		return ineq("durable", want.Durable, cur.Durable)
	case cur.AutoDelete != want.AutoDelete:
		return ineq("auto_delete", want.AutoDelete, cur.AutoDelete)
	}
	return checkArgsEquivalent("queue", want.Vhost, want.Name, cur.Args, want.Args, queueEquivalenceArgs)
}

// checkArgsEquivalent compares the given arguments of an existing
// exchange or queue (cur) with a redeclaration's (want) as RabbitMQ's
// rabbit_misc:assert_args_equivalence does: values of the same type class
// (all integer types are one) must be equal; the error shows both values
// when both are given, and a value with its type against "none" when one
// is missing. A classic x-queue-type is the same as none.
func checkArgsEquivalent(kind, vhost, name string, cur, want amqp.Table, keys []string) error {
	for _, k := range keys {
		got, gotOK := want[k]
		have, haveOK := cur[k]
		var received, current string
		switch {
		case !gotOK && !haveOK:
			continue
		case gotOK && haveOK:
			if equivalentArgs(got, have) {
				continue
			}
			received, current = "'"+erlangText(got)+"'", "'"+erlangText(have)+"'"
		default:
			if k == "x-queue-type" && (got == "classic" || have == "classic") {
				continue
			}
			received, current = describeArg(got, gotOK), describeArg(have, haveOK)
		}
		return amqp.Errorf(amqp.PreconditionFailed,
			"inequivalent arg '%s' for %s '%s' in vhost '%s': received %s but current is %s",
			k, kind, name, vhost, received, current)
	}
	return nil
}

// equivalentArgs reports whether two argument values are of one type
// class and equal.
func equivalentArgs(a, b any) bool {
	if x, ok := amqp.IntValue(a); ok {
		y, ok := amqp.IntValue(b)
		return ok && x == y
	}
	if x, ok := amqp.FloatValue(a); ok {
		y, ok := amqp.FloatValue(b)
		return ok && x == y
	}
	return bytes.Equal(amqp.AppendFieldValue(nil, a), amqp.AppendFieldValue(nil, b))
}

// erlangText is an argument value as RabbitMQ prints it in an error: a
// string as it is, anything else as the Erlang term.
func erlangText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case nil:
		return "undefined"
	}
	return fmt.Sprint(v)
}

// erlangTerm is a field value as RabbitMQ prints it with ~p: a string as
// an Erlang binary (<<"foo">>, or <<1,2>> when not printable), no value as
// undefined, numbers and booleans as they are.
func erlangTerm(v any) string {
	switch v := v.(type) {
	case string:
		return erlangBinary([]byte(v))
	case []byte:
		return erlangBinary(v)
	case nil:
		return "undefined"
	case float32, float64:
		f, _ := amqp.FloatValue(v)
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if f == math.Trunc(f) {
			s += ".0" // Erlang prints a whole float as 1.0
		}
		return s
	}
	return fmt.Sprint(v)
}

// erlangBinary prints b as an Erlang binary: quoted when every byte is
// printable ASCII, else as a list of bytes.
func erlangBinary(b []byte) string {
	printable := true
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	var out strings.Builder
	out.WriteString("<<")
	if printable {
		out.WriteByte('"')
		for _, c := range b {
			if c == '"' || c == '\\' {
				out.WriteByte('\\')
			}
			out.WriteByte(c)
		}
		out.WriteByte('"')
	} else {
		for i, c := range b {
			if i > 0 {
				out.WriteByte(',')
			}
			out.WriteString(strconv.Itoa(int(c)))
		}
	}
	out.WriteString(">>")
	return out.String()
}

func describeArg(v any, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("the value '%s' of type '%s'", erlangText(v), amqp.TypeName(v))
}
