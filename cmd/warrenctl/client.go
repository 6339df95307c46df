package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls Warren's (or RabbitMQ's) management HTTP API.
type client struct {
	base       string // e.g. http://localhost:15672
	user, pass string
	http       *http.Client
}

func newClient(base, user, pass string) *client {
	return &client{base: strings.TrimSuffix(base, "/"), user: user, pass: pass, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Reason string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Reason) }

// do sends a request with a JSON body (nil for none) and returns the
// response body.
func (c *client) do(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.base+"/api"+path, rd)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.user, c.pass)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 400 {
		var e struct{ Error, Reason string }
		reason := strings.TrimSpace(string(out))
		if json.Unmarshal(out, &e) == nil && e.Reason != "" {
			reason = e.Reason
		}
		return nil, &apiError{Status: resp.StatusCode, Reason: reason}
	}
	return out, nil
}

// list GETs a listing as objects.
func (c *client) list(path string) ([]map[string]any, error) {
	b, err := c.do(http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return out, nil
}

// esc escapes one path segment ("/" becomes %2F).
func esc(s string) string { return url.PathEscape(s) }
