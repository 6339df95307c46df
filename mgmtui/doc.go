// Package mgmtui serves Warren's management HTTP API (RabbitMQ-compatible),
// Prometheus metrics and the embedded web UI.
package mgmtui
