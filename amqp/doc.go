// Package amqp is the AMQP 0-9-1 wire format: frames, the method structs and
// their codec (generated from the spec XML into spec_gen.go), content-header
// properties, field tables, protocol constants and the protocol Error type.
//
// It knows nothing of brokers, queues or sockets beyond io.Reader and
// io.Writer. Decoders never panic and never allocate more than the frame they
// were given.
package amqp

//go:generate go run ./internal/gen -spec spec/amqp0-9-1.stripped.extended.xml -out spec_gen.go
