package mgmtui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/amqp"
)

// maxBody bounds a request body (definitions imports are the largest).
const maxBody = 64 << 20

// apiError is an HTTP error in the management API's JSON form
// {"error": ..., "reason": ...}.
type apiError struct {
	status int
	kind   string
	reason string
}

func (e *apiError) Error() string { return e.kind + ": " + e.reason }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

func notFound() *apiError {
	return &apiError{http.StatusNotFound, "Object Not Found", "Not Found"}
}

func forbidden(reason string) *apiError {
	return &apiError{http.StatusForbidden, "not_authorised", reason}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// writeError writes err as the API's JSON error. AMQP errors from the
// broker map to the status RabbitMQ's API gives them.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = fromAMQP(err)
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.kind, "reason": ae.reason})
}

// fromAMQP translates a broker error.
func fromAMQP(err error) *apiError {
	var e *amqp.Error
	if !errors.As(err, &e) {
		return &apiError{http.StatusInternalServerError, "internal_error", err.Error()}
	}
	switch e.Code {
	case amqp.NotFound:
		return &apiError{http.StatusNotFound, "not_found", e.Text}
	case amqp.AccessRefused:
		return &apiError{http.StatusForbidden, "access_refused", e.Text}
	}
	return &apiError{http.StatusBadRequest, "bad_request", e.Text}
}

// decodeBody reads a JSON object body into a map; an empty body is an
// empty object.
func decodeBody(r *http.Request) (map[string]any, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	out := map[string]any{}
	if strings.TrimSpace(string(b)) == "" {
		return out, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, badRequest("invalid JSON body: %v", err)
	}
	return out, nil
}

// body is a decoded request body with lenient accessors: rabbitmqadmin
// sends booleans and numbers as strings, as RabbitMQ accepts.
type body map[string]any

func (b body) str(key string) string {
	switch v := b[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func (b body) has(key string) bool {
	_, ok := b[key]
	return ok
}

func (b body) boolean(key string, def bool) (bool, error) {
	switch v := b[key].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, badRequest("%s must be true or false", key)
}

func (b body) integer(key string, def int64) (int64, error) {
	switch v := b[key].(type) {
	case nil:
		return def, nil
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, badRequest("%s must be an integer", key)
}

// table reads an arguments-like object as an AMQP table.
func (b body) table(key string) (amqp.Table, error) {
	switch v := b[key].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return tableFromJSON(v), nil
	case string:
		if strings.TrimSpace(v) == "" {
			return nil, nil
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&m); err == nil {
			return tableFromJSON(m), nil
		}
	}
	return nil, badRequest("%s must be an object", key)
}
