package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Queue generations. A durable queue's messages are stored under its
// store key, which is the vhost and the queue's name. When a queue is
// deleted its messages go from the store after its metadata record (an
// atomic one): a crash in between leaves them behind, and the next start
// drops them (dropOrphanMessages) before any client can declare the name
// again. But if removing them fails while the broker runs (the disk is
// full or failing, a commit is lost), they stay under the name, and a
// queue declared again under it would get them back at the next restart.
//
// So a new durable queue first looks for messages under the key it would
// use. Finding some, it takes a new generation (a fresh message id, which
// no restart hands out again) and keeps it in a store record; its key gets
// the generation as a suffix and the old messages become orphans, dropped
// at the next start. The common case (no leftovers) writes nothing and
// keeps the plain key, which is also what data dirs made before
// generations hold.

// kindQueueGen is the store record kind of queue generations: key the
// vhost, NUL and the queue's name; value the generation (8 bytes BE).
const kindQueueGen = "queuegen"

// queueGens are the generations of the queues that have one.
type queueGens struct {
	mu sync.Mutex
	m  map[string]uint64 // genKey -> generation
}

// genKey is the key of a queue's generation record.
func genKey(vhost, name string) string { return vhost + "\x00" + name }

// queueStoreKey is the store key of a queue's messages: the vhost, NUL and
// the name, then for a generation other than 0 a 0xFF byte (which UTF-8
// names never contain) and the generation in decimal.
func queueStoreKey(vhost, name string, gen uint64) string {
	if gen == 0 {
		return genKey(vhost, name)
	}
	return genKey(vhost, name) + "\xff" + strconv.FormatUint(gen, 10)
}

// loadQueueGens reads the generation records; it runs before the
// metadata restores the queues.
func (s *Server) loadQueueGens() error {
	s.gens.m = map[string]uint64{}
	return s.store.ListMeta(kindQueueGen, func(key string, value []byte) error {
		if len(value) != 8 {
			return fmt.Errorf("bad queue generation record %q", key)
		}
		s.gens.m[key] = binary.BigEndian.Uint64(value)
		return nil
	})
}

// errFound stops a scan that found what it looked for.
var errFound = errors.New("found")

// storeKeyFor returns the store key of a queue being created. A durable
// queue created while the broker runs moves to a new generation when
// messages of a namesake are left under its key.
func (s *Server) storeKeyFor(vhost, name string, durable bool) string {
	gk := genKey(vhost, name)
	s.gens.mu.Lock()
	gen := s.gens.m[gk]
	s.gens.mu.Unlock()
	key := queueStoreKey(vhost, name, gen)
	// With a replicated metadata log a queue this node knew may reach it
	// only after start (a follower learns its last entries from the
	// leader): messages under its key are its own then, not a namesake's.
	if !durable || s.restoring || s.cfg.MetaLog != nil {
		return key
	}
	err := s.store.ScanQueueIndex(key, func(uint64, int, bool) error { return errFound })
	if err == nil {
		return key // nothing left behind: the common case
	}
	if !errors.Is(err, errFound) {
		s.log.Error("looking for messages left under a new queue's name failed", "vhost", vhost, "queue", name, "err", err)
	}
	next := s.newMessageID()
	if perr := s.store.PutMeta(kindQueueGen, gk, binary.BigEndian.AppendUint64(nil, next)); perr != nil {
		// Without a new generation the leftovers must go now.
		s.log.Error("recording a queue's new generation failed; deleting the messages left under its name instead",
			"vhost", vhost, "queue", name, "err", perr)
		if derr := s.store.DeleteQueue(key); derr != nil {
			s.log.Error("deleting the messages left under a queue's name failed; they may come back in it after a restart",
				"vhost", vhost, "queue", name, "err", derr)
		}
		return key
	}
	s.gens.mu.Lock()
	s.gens.m[gk] = next
	s.gens.mu.Unlock()
	s.log.Info("messages of a deleted queue are left under its name; the new queue takes a new generation",
		"vhost", vhost, "queue", name, "generation", next)
	return queueStoreKey(vhost, name, next)
}

// dropStaleQueueGens removes the generation records of queues that no
// longer exist (live holds the genKey of every durable queue).
func (s *Server) dropStaleQueueGens(live map[string]bool) error {
	s.gens.mu.Lock()
	var stale []string
	for k := range s.gens.m {
		if !live[k] {
			stale = append(stale, k)
			delete(s.gens.m, k)
		}
	}
	s.gens.mu.Unlock()
	if err := s.store.DeleteMetaKeys(kindQueueGen, stale); err != nil {
		return fmt.Errorf("delete the generation records of deleted queues: %w", err)
	}
	return nil
}
