// Package cluster makes Warren nodes on a LAN one broker: membership with
// hashicorp/memberlist, the metadata log replicated with hashicorp/raft,
// and queues that live on one node and are reached from the others. A
// Node is the broker's meta.Log (broker.Config.MetaLog = Node.OpenLog)
// and its broker.Remote (broker.Config.Remote = Node); the broker never
// imports this package.
//
// # Metadata on raft
//
// Every metadata op is appended to the raft log by the leader and applied
// by every node's state machine (fsm.go) in log order: decode, check,
// apply, hand the changes to the broker. The check runs on every node
// against the same state and gives the same answer, which the apply
// returns as its response: a refused op changes nothing anywhere and its
// *amqp.Error reaches the client unchanged. Snapshots are the whole
// metadata (meta.Snapshot); restoring one hands the broker the difference
// (meta.Diff). Raft's log and stable store are a Badger database under
// DataDir/raft (logstore.go), its snapshots files under DataDir/snapshots.
//
// # Inter-node port
//
// One TCP listener (gossip port + 1 by default) carries raft's transport,
// Warren's own requests and the queue links; the first byte of a
// connection says which (internode.go). Warren's requests (rpc.go) are a
// proposal forwarded to the leader, a read-index for catch-up, and
// forget.
//
// # Queues on their home node
//
// A shared queue lives on one node, its home (meta.Queue.Node), which the
// declaring node picks before it proposes the declare: itself, or with
// the balanced locator the running node with the fewest queues
// (placement.go). Every node routes; the others reach the queue through
// a remoteQueue (remotequeue.go), the broker.RemoteQueue that
// Node.QueueHandle returns. Their traffic travels on queue links
// (link.go): one long-lived TCP connection per pair of nodes, used both
// ways, with request ids, frames batched by a writer goroutine, and
// publisher back-pressure when too much waits to be written. The home
// side (home.go) serves the node's queues through the broker's HomeQueue
// and PublishHome: publishes (answered after the fsync of a persistent
// message in a durable queue), consumers (a proxyConsumer forwards
// deliveries while the consuming node has granted credit: its prefetch,
// or linkDefaultCredit), basic.get, settlements by delivery number,
// purge and counts. A broken link requeues at the home what it
// delivered, and cancels (basic.cancel) the consumers on the other side;
// the gossip closes the links of a node it sees down. While a home node
// is down its queues answer with RabbitMQ's 404 "home node … is down or
// inaccessible" and publishes to them are nacked.
//
// # Proposals and read-your-writes
//
// Propose on the leader applies through raft. On a follower it sends the
// encoded op to the leader, which applies it and answers with the entry's
// index and the check's answer; the follower returns once its own state
// machine has applied that index, so the client reads its write on the
// node it used. Without a leader and a majority Propose fails within
// Config.ProposeTimeout (4 s) with 541 INTERNAL_ERROR saying so; an op is
// applied on every node or on none.
//
// CatchUp (used by the broker before it answers 404) asks the leader for
// a read index: the leader (once an entry of its own term is applied, and
// after a majority confirms it still leads) returns the last command at or
// below its commit index; the node waits until it has applied that far.
// So after declare-ok from node A, a passive declare on node B finds the
// queue.
//
// # Bootstrap and membership
//
// A node started with no raft state and no seeds (Config.Join empty)
// bootstraps a new cluster with itself as the only voter and creates the
// default vhost and user (Node.Fresh). Every other node is started with
// seeds and never bootstraps: it joins the gossip through any seed that
// answers (retrying, so start order does not matter) and waits for the
// leader to add it. This cannot found two clusters unless two nodes are
// started without seeds on empty data dirs, which is the operator's
// explicit choice; a node whose data dir was wiped must be started with
// seeds to rejoin.
//
// The leader adds every node the gossip sees up: as a voter while there
// are fewer than Config.MaxVoters (5), else as a non-voter, promoted when
// a voter is forgotten. A node that stops or fails stays a member
// (Members shows it not running), as RabbitMQ keeps stopped nodes, and
// still counts towards the majority; Forget removes it.
package cluster
