package mgmtui

import (
	"time"

	"github.com/warrenmq/warren/amqp"
)

// tableFromJSON and tableToJSON convert arguments and headers.
func tableFromJSON(m map[string]any) amqp.Table { return amqp.TableFromJSON(m) }

func tableToJSON(t amqp.Table) map[string]any { return amqp.TableToJSON(t) }

// propertiesToJSON renders message properties with RabbitMQ's names,
// leaving out unset ones.
func propertiesToJSON(p *amqp.Properties) map[string]any {
	out := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set("content_type", p.ContentType)
	set("content_encoding", p.ContentEncoding)
	set("correlation_id", p.CorrelationID)
	set("reply_to", p.ReplyTo)
	set("expiration", p.Expiration)
	set("message_id", p.MessageID)
	set("type", p.Type)
	set("user_id", p.UserID)
	set("app_id", p.AppID)
	set("cluster_id", p.ClusterID)
	if p.Headers != nil {
		out["headers"] = tableToJSON(p.Headers)
	}
	if p.DeliveryMode != 0 {
		out["delivery_mode"] = p.DeliveryMode
	}
	if p.Priority != 0 {
		out["priority"] = p.Priority
	}
	if !p.Timestamp.IsZero() {
		out["timestamp"] = p.Timestamp.Unix()
	}
	return out
}

// propertiesFromJSON reads message properties as the publish endpoint
// receives them.
func propertiesFromJSON(m map[string]any) (amqp.Properties, error) {
	var p amqp.Properties
	b := body(m)
	p.ContentType = b.str("content_type")
	p.ContentEncoding = b.str("content_encoding")
	p.CorrelationID = b.str("correlation_id")
	p.ReplyTo = b.str("reply_to")
	p.Expiration = b.str("expiration")
	p.MessageID = b.str("message_id")
	p.Type = b.str("type")
	p.UserID = b.str("user_id")
	p.AppID = b.str("app_id")
	p.ClusterID = b.str("cluster_id")
	h, err := b.table("headers")
	if err != nil {
		return p, err
	}
	p.Headers = h
	for _, f := range []struct {
		key string
		dst *uint8
	}{{"delivery_mode", &p.DeliveryMode}, {"priority", &p.Priority}} {
		n, err := b.integer(f.key, 0)
		if err != nil || n < 0 || n > 255 {
			return p, badRequest("%s must be an integer from 0 to 255", f.key)
		}
		*f.dst = uint8(n)
	}
	ts, err := b.integer("timestamp", 0)
	if err != nil {
		return p, err
	}
	if ts != 0 {
		p.Timestamp = time.Unix(ts, 0)
	}
	return p, nil
}
