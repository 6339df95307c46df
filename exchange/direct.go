package exchange

import (
	"hash/maphash"

	"github.com/warrenmq/warren/amqp"
)

// directShards splits a direct table so that a bind copies one shard, not
// every binding.
const directShards = 64

// directTable maps routing keys to destinations, in shards by key hash.
type directTable struct {
	seed   maphash.Seed
	shards [directShards]map[string][]Destination
}

func newDirectTable() *directTable { return &directTable{seed: maphash.MakeSeed()} }

func (t *directTable) shard(key string) int {
	return int(maphash.String(t.seed, key) % directShards)
}

func (t *directTable) route(key string, _ amqp.Table, out []Destination) []Destination {
	return append(out, t.shards[t.shard(key)][key]...)
}

func (t *directTable) with(b Binding, add bool) router {
	n := *t // copies the shard pointers
	i := t.shard(b.Key)
	old := t.shards[i]
	m := make(map[string][]Destination, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if add {
		m[b.Key] = addDest(old[b.Key], b.Destination)
	} else if ds := removeDest(old[b.Key], b.Destination); len(ds) > 0 {
		m[b.Key] = ds
	} else {
		delete(m, b.Key)
	}
	n.shards[i] = m
	return &n
}

// fanoutTable is every destination, whatever the key.
type fanoutTable []Destination

func (t fanoutTable) route(_ string, _ amqp.Table, out []Destination) []Destination {
	return append(out, t...)
}

func (t fanoutTable) with(b Binding, add bool) router {
	if add {
		return fanoutTable(addDest(t, b.Destination))
	}
	return fanoutTable(removeDest(t, b.Destination))
}
