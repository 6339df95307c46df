package meta

import "bytes"

// Diff returns the changes that turn from into to: deletes of the records
// to lacks (or changed, for vhosts, exchanges and queues, which are then
// put again), newest kinds first, then puts of the records it adds or
// changes, in dependency order. Installing a snapshot over a running state
// hands these to the applier, so that the broker follows the same way as
// for any op.
func Diff(from, to *State) []Change {
	type keyed struct {
		kind Kind
		id   string
	}
	encode := func(r Record) []byte { return appendRecord(nil, r) }
	toRecs := map[keyed]Record{}
	to.Each(func(r Record) { toRecs[keyed{r.Kind(), r.ID()}] = r })

	var deletes []Change
	replaced := map[keyed]bool{}
	from.Each(func(r Record) {
		k := keyed{r.Kind(), r.ID()}
		n, ok := toRecs[k]
		switch {
		case !ok:
		case bytes.Equal(encode(r), encode(n)):
			delete(toRecs, k) // unchanged
			return
		case r.Kind() == KindVhost || r.Kind() == KindExchange || r.Kind() == KindQueue:
			replaced[k] = true
		default:
			return // changed in place: the put below replaces it
		}
		deletes = append(deletes, Change{Delete: true, Record: r, Durable: from.Durable(r)})
	})
	out := make([]Change, 0, len(deletes)+len(toRecs))
	for i := len(deletes) - 1; i >= 0; i-- {
		out = append(out, deletes[i])
	}
	to.Each(func(r Record) {
		if _, ok := toRecs[keyed{r.Kind(), r.ID()}]; ok {
			out = append(out, Change{Record: r, Durable: to.Durable(r)})
		}
	})
	return out
}
