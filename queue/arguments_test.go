package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp"
)

// The expected texts below were captured from RabbitMQ 3.10.8 answering the
// same queue.declare (queue "q" in vhost "/").
func TestParseArgumentsRejectsLikeRabbitMQ(t *testing.T) {
	const prefix = "PRECONDITION_FAILED - invalid arg "
	tests := []struct {
		name string
		args amqp.Table
		want string
	}{
		{"negative ttl", amqp.Table{"x-message-ttl": int32(-1)}, prefix + "'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"},
		{"string ttl", amqp.Table{"x-message-ttl": "10"}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got longstr"`},
		{"double ttl", amqp.Table{"x-message-ttl": 10.0}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got double"`},
		{"float ttl", amqp.Table{"x-message-ttl": float32(1)}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got float"`},
		{"void ttl", amqp.Table{"x-message-ttl": nil}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got void"`},
		{"table ttl", amqp.Table{"x-message-ttl": amqp.Table{}}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got table"`},
		{"array ttl", amqp.Table{"x-message-ttl": []any{}}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got array"`},
		{"bool ttl", amqp.Table{"x-message-ttl": true}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got bool"`},
		{"binary ttl", amqp.Table{"x-message-ttl": []byte("x")}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got binary"`},
		{"timestamp ttl", amqp.Table{"x-message-ttl": time.Unix(0, 0)}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got timestamp"`},
		{"decimal ttl", amqp.Table{"x-message-ttl": amqp.Decimal{}}, prefix + `'x-message-ttl' for queue 'q' in vhost '/': "expected integer, got decimal"`},
		{"ttl too large", amqp.Table{"x-message-ttl": int64(315360000001)}, prefix + "'x-message-ttl' for queue 'q' in vhost '/': {value_too_large,315360000001}"},
		{"zero expires", amqp.Table{"x-expires": int32(0)}, prefix + "'x-expires' for queue 'q' in vhost '/': {value_zero,0}"},
		{"negative expires", amqp.Table{"x-expires": int32(-5)}, prefix + "'x-expires' for queue 'q' in vhost '/': {value_negative,-5}"},
		{"string expires", amqp.Table{"x-expires": "a"}, prefix + `'x-expires' for queue 'q' in vhost '/': "expected integer, got longstr"`},
		{"expires too large", amqp.Table{"x-expires": int64(1) << 62}, prefix + "'x-expires' for queue 'q' in vhost '/': {value_too_large,4611686018427387904}"},
		{"negative max-length", amqp.Table{"x-max-length": int32(-1)}, prefix + "'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"},
		{"string max-length", amqp.Table{"x-max-length": "x"}, prefix + `'x-max-length' for queue 'q' in vhost '/': "expected integer, got longstr"`},
		{"negative max-length-bytes", amqp.Table{"x-max-length-bytes": int32(-2)}, prefix + "'x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-2}"},
		{"bool max-length-bytes", amqp.Table{"x-max-length-bytes": true}, prefix + `'x-max-length-bytes' for queue 'q' in vhost '/': "expected integer, got bool"`},
		{"unknown overflow", amqp.Table{"x-overflow": "foo"}, prefix + "'x-overflow' for queue 'q' in vhost '/': invalid_overflow"},
		{"int overflow", amqp.Table{"x-overflow": int32(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,signedint}"},
		{"long overflow", amqp.Table{"x-overflow": int64(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,long}"},
		{"byte overflow", amqp.Table{"x-overflow": int8(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,byte}"},
		{"ubyte overflow", amqp.Table{"x-overflow": uint8(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,unsignedbyte}"},
		{"short overflow", amqp.Table{"x-overflow": int16(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,short}"},
		{"ushort overflow", amqp.Table{"x-overflow": uint16(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,unsignedshort}"},
		{"uint overflow", amqp.Table{"x-overflow": uint32(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,unsignedint}"},
		{"void overflow", amqp.Table{"x-overflow": nil}, prefix + "'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,void}"},
		{"priority too large", amqp.Table{"x-max-priority": int32(256)}, prefix + "'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}"},
		{"negative priority", amqp.Table{"x-max-priority": int32(-1)}, prefix + "'x-max-priority' for queue 'q' in vhost '/': {value_negative,-1}"},
		{"string priority", amqp.Table{"x-max-priority": "5"}, prefix + `'x-max-priority' for queue 'q' in vhost '/': "expected integer, got longstr"`},
		{"int dlx", amqp.Table{"x-dead-letter-exchange": int32(1)}, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"},
		{"void dlx", amqp.Table{"x-dead-letter-exchange": nil}, "PRECONDITION_FAILED - invalid type 'void' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"},
		{"routing key without dlx", amqp.Table{"x-dead-letter-routing-key": "rk"}, prefix + "'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined"},
		{"empty routing key without dlx", amqp.Table{"x-dead-letter-routing-key": ""}, prefix + "'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined"},
		{"int routing key", amqp.Table{"x-dead-letter-routing-key": int32(3)}, prefix + "'x-dead-letter-routing-key' for queue 'q' in vhost '/': {unacceptable_type,signedint}"},
		{"string sac", amqp.Table{"x-single-active-consumer": "true"}, prefix + "'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,longstr}"},
		{"void sac", amqp.Table{"x-single-active-consumer": nil}, prefix + "'x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,void}"},
		{"unknown queue type", amqp.Table{"x-queue-type": "foo"}, prefix + `'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'foo'"`},
		{"quorum queue type", amqp.Table{"x-queue-type": "quorum"}, prefix + `'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'quorum'"`},
		{"stream queue type", amqp.Table{"x-queue-type": "stream"}, prefix + `'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'stream'"`},
		{"int queue type", amqp.Table{"x-queue-type": int32(1)}, prefix + "'x-queue-type' for queue 'q' in vhost '/': {unacceptable_type,signedint}"},
		{"unknown queue mode", amqp.Table{"x-queue-mode": "foo"}, prefix + `'x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'foo'"`},
		{"int queue mode", amqp.Table{"x-queue-mode": int32(1)}, prefix + "'x-queue-mode' for queue 'q' in vhost '/': {unacceptable_type,signedint}"},
		{"quorum-only argument", amqp.Table{"x-delivery-limit": int32(1)}, prefix + "'x-delivery-limit' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"},
		{"stream-only argument", amqp.Table{"x-max-age": "1D"}, prefix + "'x-max-age' for queue 'q' in vhost '/' of queue type rabbit_classic_queue"},
		// With several invalid arguments, RabbitMQ names the first in its order.
		{"expires before ttl", amqp.Table{"x-message-ttl": int32(-1), "x-expires": int32(0)}, prefix + "'x-expires' for queue 'q' in vhost '/': {value_zero,0}"},
		{"ttl before max-length", amqp.Table{"x-message-ttl": int32(-1), "x-max-length": int32(-1)}, prefix + "'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"},
		{"priority before overflow", amqp.Table{"x-overflow": "x", "x-max-priority": int32(-1)}, prefix + "'x-max-priority' for queue 'q' in vhost '/': {value_negative,-1}"},
		{"declare args before other types' args", amqp.Table{"x-overflow": "x", "x-delivery-limit": int32(1)}, prefix + "'x-overflow' for queue 'q' in vhost '/': invalid_overflow"},
		{"dlx type first", amqp.Table{"x-dead-letter-exchange": int32(1), "x-expires": int32(0)}, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"},
		{"queue type before declare args", amqp.Table{"x-queue-type": "foo", "x-single-active-consumer": int32(1)}, prefix + `'x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'foo'"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseArguments("/", "q", tt.args)
			var ae *amqp.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want *amqp.Error", err)
			}
			if ae.Code != amqp.PreconditionFailed || ae.Text != tt.want {
				t.Fatalf("error = %d %q\nwant 406 %q", ae.Code, ae.Text, tt.want)
			}
		})
	}
}

func TestParseArgumentsAcceptsValidValues(t *testing.T) {
	tests := []struct {
		name  string
		args  amqp.Table
		check func(Config) bool
	}{
		{"no arguments", nil, func(c Config) bool {
			return c.MessageTTL == -1 && c.Expires == 0 && c.MaxLength == -1 && c.MaxLengthBytes == -1 &&
				c.Overflow == DropHead && c.MaxPriority == 0 && !c.HasDeadLetterExchange && c.Name == "q"
		}},
		{"ttl int32", amqp.Table{"x-message-ttl": int32(1500)}, func(c Config) bool { return c.MessageTTL == 1500*time.Millisecond }},
		{"ttl zero", amqp.Table{"x-message-ttl": int64(0)}, func(c Config) bool { return c.MessageTTL == 0 }},
		{"ttl uint8", amqp.Table{"x-message-ttl": uint8(5)}, func(c Config) bool { return c.MessageTTL == 5*time.Millisecond }},
		{"ttl int16", amqp.Table{"x-message-ttl": int16(5)}, func(c Config) bool { return c.MessageTTL == 5*time.Millisecond }},
		{"ttl uint32", amqp.Table{"x-message-ttl": uint32(7)}, func(c Config) bool { return c.MessageTTL == 7*time.Millisecond }},
		{"ttl int8", amqp.Table{"x-message-ttl": int8(1)}, func(c Config) bool { return c.MessageTTL == time.Millisecond }},
		{"ttl uint16", amqp.Table{"x-message-ttl": uint16(1)}, func(c Config) bool { return c.MessageTTL == time.Millisecond }},
		{"ttl go int", amqp.Table{"x-message-ttl": 9}, func(c Config) bool { return c.MessageTTL == 9*time.Millisecond }},
		{"ttl at limit", amqp.Table{"x-message-ttl": int64(315360000000)}, func(c Config) bool { return c.MessageTTL == 315360000000*time.Millisecond }},
		{"expires", amqp.Table{"x-expires": int32(60000)}, func(c Config) bool { return c.Expires == time.Minute }},
		{"max-length zero", amqp.Table{"x-max-length": int32(0)}, func(c Config) bool { return c.MaxLength == 0 }},
		{"max-length-bytes", amqp.Table{"x-max-length-bytes": int64(1 << 40)}, func(c Config) bool { return c.MaxLengthBytes == 1<<40 }},
		{"overflow drop-head", amqp.Table{"x-overflow": "drop-head"}, func(c Config) bool { return c.Overflow == DropHead }},
		{"overflow reject-publish", amqp.Table{"x-overflow": "reject-publish"}, func(c Config) bool { return c.Overflow == RejectPublish }},
		{"overflow reject-publish-dlx", amqp.Table{"x-overflow": "reject-publish-dlx"}, func(c Config) bool { return c.Overflow == RejectPublishDLX }},
		{"max-priority zero", amqp.Table{"x-max-priority": int32(0)}, func(c Config) bool { return c.MaxPriority == 0 }},
		{"max-priority 255", amqp.Table{"x-max-priority": int32(255)}, func(c Config) bool { return c.MaxPriority == 255 }},
		{"max-priority uint8", amqp.Table{"x-max-priority": uint8(10)}, func(c Config) bool { return c.MaxPriority == 10 }},
		{"default-exchange dlx", amqp.Table{"x-dead-letter-exchange": ""}, func(c Config) bool {
			return c.HasDeadLetterExchange && c.DeadLetterExchange == "" && !c.HasDeadLetterRoutingKey
		}},
		{"dlx and routing key", amqp.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": ""}, func(c Config) bool {
			return c.DeadLetterExchange == "dlx" && c.HasDeadLetterRoutingKey && c.DeadLetterRoutingKey == ""
		}},
		{"single active consumer", amqp.Table{"x-single-active-consumer": true}, func(c Config) bool { return c.SingleActiveConsumer }},
		{"single active consumer off", amqp.Table{"x-single-active-consumer": false}, func(c Config) bool { return !c.SingleActiveConsumer }},
		{"classic queue type", amqp.Table{"x-queue-type": "classic"}, func(Config) bool { return true }},
		{"lazy queue mode", amqp.Table{"x-queue-mode": "lazy"}, func(Config) bool { return true }},
		{"unknown arguments", amqp.Table{"x-unknown": "foo", "x-quorum-target-group-size": int32(1), "other": []any{}}, func(Config) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseArguments("/", "q", tt.args)
			if err != nil {
				t.Fatalf("ParseArguments = %v", err)
			}
			if !tt.check(cfg) {
				t.Fatalf("config %+v does not reflect %v", cfg, tt.args)
			}
			if len(tt.args) > 0 && cfg.Args == nil {
				t.Fatal("Args not kept")
			}
		})
	}
}

func TestParseConsumeArguments(t *testing.T) {
	tests := []struct {
		name    string
		args    amqp.Table
		want    int
		wantErr string
	}{
		{"none", nil, 0, ""},
		{"int32", amqp.Table{"x-priority": int32(5)}, 5, ""},
		{"negative", amqp.Table{"x-priority": int16(-3)}, -3, ""},
		{"large", amqp.Table{"x-priority": int64(1) << 40}, 1 << 40, ""},
		{"string", amqp.Table{"x-priority": "x"}, 0, `PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': "expected integer, got longstr"`},
		{"cancel on failover not bool", amqp.Table{"x-cancel-on-ha-failover": int32(1)}, 0, "PRECONDITION_FAILED - invalid arg 'x-cancel-on-ha-failover' for queue 'q' in vhost '/': {unacceptable_type,signedint}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConsumeArguments("/", "q", tt.args)
			if tt.wantErr != "" {
				var ae *amqp.Error
				if !errors.As(err, &ae) || ae.Text != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseConsumeArguments = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}
