// Package store keeps Warren's durable state on Badger: metadata records
// (vhosts, users, permissions, exchanges, queues, bindings, policies) and
// the persistent messages of durable queues.
//
// # Key scheme
//
//	f                         format marker "warren-store-v1" (refuses foreign data dirs)
//	n                         the node id (2 bytes BE), drawn when the store is created
//	i<node:2 BE>              the node's message counter mark (8 bytes BE)
//	M<kind>\x00<key>          a metadata record (JSON written by the broker)
//	b<id:8 BE>                a message body, stored once however many queues hold it
//	M queuegen\x00<vhost>\x00<name>  a queue's generation (queues with one; broker/queuegen.go)
//	q<len:2 BE><queue><id:8>  a queue's entry for a message (queue: the broker's store key,
//	                          vhost NUL name, and 0xFF generation when it has one); value: a delivered
//	                          flag byte (0 ready, 1 delivered) and the body size (uvarint)
//	p<len:2 BE><queue><id:8>  a transient message a queue paged out of memory (the
//	                          whole encoded message); dropped when the store opens
//
// A message id is a node id and that node's counter (ids.go), so that ids
// stay unique when nodes forward messages to each other. One node's ids
// grow, so scanning q<queue> in key order yields a queue's messages in
// publish order as long as they all come from one node (with the same node
// id). The body size in the entry lets a
// restart count a queue's bytes from the index alone.
//
// # What is written when
//
// AddMessage writes the body and one entry per queue; RemoveMessage deletes
// the queue's entry and, with the last entry, the body; MarkDelivered sets
// the entry's delivered flag so a message delivered before a crash comes
// back redelivered. Reference counts live in memory only for bodies held by
// more than one queue (rebuilt at open from the entries), so a backlog of
// single-queue messages costs no memory here.
//
// Queues past their memory bound page ready messages out (queue/paging.go,
// broker/pager.go): a persistent message of a durable queue is on disk
// already, so only its id stays in memory; any other is written with
// PageOut. ReadMessages reads either kind back, waiting for a sync when a
// write is still pending; RemovePaged drops a paged one once it is read
// back or leaves the queue.
//
// Badger reads and writes its value log, tables and memtable logs through
// shared memory mappings, and the kernel would keep every page touched
// resident in the broker, so that a backlog of gigabytes on disk looked
// like gigabytes of RSS. A trimmer (trim_linux.go) checks RssFile every
// TrimInterval and, past MappedBudget, advises the store's mappings with
// MADV_PAGEOUT, which reclaims their clean pages without losing data.
//
// # Disk space
//
// Badger maps its value log, memtable logs and tables over files it
// creates at full size without allocating them; a write into them on a
// full file system is a SIGBUS. space.go keeps the file system from
// getting there: free space is counted less those files' holes, the
// committer measures it every quarter of a value-log file written, and
// below a floor (what Badger may need without warning) it refuses new
// messages with ErrNoSpace while removals and marks go on. A ballast
// file gives Badger room to open on a disk something else filled.
//
// # Commit path
//
// Every write is submitted to one committer goroutine. It takes everything
// pending (up to MaxBatchOps or MaxBatchBytes), writes it as one Badger
// WriteBatch (Badger runs with SyncWrites off), syncs once, and only then
// runs the callbacks of the batch: publisher confirms are released after
// the fsync that covers them. The batch closes when the committer has
// drained what was pending, never on a timer, so a lone message commits at
// once and a busy broker pays one fsync for thousands of messages.
//
// # Recovery
//
// Open reads the node id (drawing and writing one in a store without it),
// drops paged-out transient messages and rebuilds the reference counts
// (from a sorted list of entry ids, 8 bytes a message);
// the broker then restores metadata with ListMeta and each durable queue
// with ScanQueueIndex (ids and sizes only; bodies are read when consumers
// approach them) or, for a priority queue, ScanQueue.
// Badger's directory lock makes a second broker on the same directory fail
// at once; a non-empty directory without our marker is refused.
package store
