package amqp

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"
)

// JSON forms of field tables, as RabbitMQ's management API and definitions
// files write them.

// TableFromJSON converts a decoded JSON object to a table as RabbitMQ
// does: integers become longs, other numbers doubles, strings long
// strings, arrays and objects arrays and tables. Numbers may be float64
// or json.Number.
func TableFromJSON(m map[string]any) Table {
	t := make(Table, len(m))
	for k, v := range m {
		t[k] = valueFromJSON(v)
	}
	return t
}

func valueFromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
		return v
	case map[string]any:
		return TableFromJSON(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = valueFromJSON(e)
		}
		return out
	}
	return v // string, bool, nil
}

// TableToJSON converts a table to values encoding/json writes as RabbitMQ
// shows them: byte arrays as text (base64 when not UTF-8), timestamps as
// Unix seconds, decimals as numbers. A nil table becomes an empty object.
func TableToJSON(t Table) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = valueToJSON(v)
	}
	return out
}

func valueToJSON(v any) any {
	switch v := v.(type) {
	case Table:
		return TableToJSON(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = valueToJSON(e)
		}
		return out
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return base64.StdEncoding.EncodeToString(v)
	case time.Time:
		return v.Unix()
	case Decimal:
		return float64(v.Value) / math.Pow10(int(v.Scale))
	}
	return v
}
