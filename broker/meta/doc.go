// Package meta is the broker's metadata as a deterministic state machine:
// vhosts, users, permissions, policies, exchanges, queues and bindings.
//
// Every change is an Op. Check tests an op against the current State
// without changing it and returns the error RabbitMQ gives (an
// *amqp.Error with its code and text); Apply performs a checked op and
// returns the record-level Changes it made (puts and deletes of vhost,
// user, permission, policy, exchange, queue and binding records),
// including cascades such as the bindings of a deleted queue and the
// auto-delete exchanges that lose their last binding. Apply never fails
// for a checked op and does the same on every node, so a replicated log of
// ops gives every node the same State.
//
// A Log orders ops: Local is the single-node log, which writes the
// durable part of each op's changes to the store as one record (so an op
// is on disk whole or not at all) and hands the changes to an Applier that
// updates the running broker. A snapshot is the whole state as one
// deterministic byte string; restart recovery is a snapshot plus the
// changes logged after it.
//
// The package knows no sockets and no connections: it is driven by values
// and tested with scripts under testdata/.
package meta
