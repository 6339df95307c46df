package amqp

import "time"

// Table is an AMQP field table. Values decode to these Go types, and encode
// back to the same type tag, so a table survives a round trip untouched:
//
//	t bool      b int8     B uint8    s int16    u uint16
//	I int32     i uint32   l int64    f float32  d float64
//	D Decimal   S string   x []byte   A []any    T time.Time
//	F Table     V nil
//
// When encoding, a Go int is written as l (int64).
type Table map[string]any

// Decimal is the AMQP decimal type: Value / 10^Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// Properties are the 14 basic content-header properties. A property is sent
// when it is non-zero.
type Properties struct {
	ContentType     string
	ContentEncoding string
	Headers         Table
	DeliveryMode    uint8
	Priority        uint8
	CorrelationID   string
	ReplyTo         string
	Expiration      string
	MessageID       string
	Timestamp       time.Time
	Type            string
	UserID          string
	AppID           string
	ClusterID       string // the spec's "reserved" property
}

// Property flag bits, in the order of the spec.
const (
	FlagContentType     uint16 = 0x8000
	FlagContentEncoding uint16 = 0x4000
	FlagHeaders         uint16 = 0x2000
	FlagDeliveryMode    uint16 = 0x1000
	FlagPriority        uint16 = 0x0800
	FlagCorrelationID   uint16 = 0x0400
	FlagReplyTo         uint16 = 0x0200
	FlagExpiration      uint16 = 0x0100
	FlagMessageID       uint16 = 0x0080
	FlagTimestamp       uint16 = 0x0040
	FlagType            uint16 = 0x0020
	FlagUserID          uint16 = 0x0010
	FlagAppID           uint16 = 0x0008
	FlagClusterID       uint16 = 0x0004
)

// DeliveryModePersistent marks a message that a durable queue stores on disk.
const DeliveryModePersistent = 2
