// Package cluster will hold Warren's clustering: membership via memberlist,
// the replicated metadata log on raft, queue placement and forwarding of
// publishes and consumes to the node that hosts a queue. Nothing here yet.
package cluster
