// Package exchange holds exchange types and their binding tables: direct,
// fanout, topic (a trie over words) and headers (x-match all, any,
// all-with-x, any-with-x).
//
// Routing is lock-free: an Exchange publishes an immutable snapshot of its
// bindings through an atomic pointer, and Bind/Unbind build the next
// snapshot under a mutex, copying only what changes (one hash shard for
// direct, one trie path for topic).
package exchange
