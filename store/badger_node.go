package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// loadNodeID reads the store's node id, drawing one at random and writing
// it when the store has none (a new store, or one written before node ids
// existed).
func (b *Badger) loadNodeID(dir string) error {
	var id uint16
	err := b.db.View(func(txn *badger.Txn) error {
		v, ok, err := getValue(txn, keyNode)
		if err != nil || !ok {
			return err
		}
		if len(v) != 2 {
			return fmt.Errorf("node id record of %d bytes", len(v))
		}
		id = binary.BigEndian.Uint16(v)
		return CheckNodeID(id)
	})
	if err != nil {
		return fmt.Errorf("read the node id in %s: %w", dir, err)
	}
	if id == 0 {
		id = randomNodeID()
		err = b.db.Update(func(txn *badger.Txn) error { return txn.Set(keyNode, nodeValue(id)) })
		if err == nil {
			err = b.db.Sync()
		}
		if err != nil {
			return fmt.Errorf("write the node id in %s: %w", dir, err)
		}
		b.log.Info("new node id", "node", id)
	}
	b.nodeID.Store(uint32(id))
	return nil
}

func nodeValue(id uint16) []byte { return binary.BigEndian.AppendUint16(nil, id) }

// NodeID returns the store's node id.
func (b *Badger) NodeID() uint16 { return uint16(b.nodeID.Load()) }

// SetNodeID replaces the store's node id durably.
func (b *Badger) SetNodeID(id uint16) error {
	if err := CheckNodeID(id); err != nil {
		return err
	}
	if err := b.putSync(keyNode, nodeValue(id)); err != nil {
		return fmt.Errorf("store node id %d: %w", id, err)
	}
	b.nodeID.Store(uint32(id))
	return nil
}

// IDMark returns node's message counter mark, or 0.
func (b *Badger) IDMark(node uint16) (uint64, error) {
	var mark uint64
	err := b.db.View(func(txn *badger.Txn) error {
		v, ok, err := getValue(txn, idMarkKey(node))
		if err != nil || !ok {
			return err
		}
		if len(v) != 8 {
			return fmt.Errorf("id mark record of %d bytes", len(v))
		}
		mark = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the id mark of node %d: %w", node, err)
	}
	return mark, nil
}

// SetIDMark records node's message counter mark durably.
func (b *Badger) SetIDMark(node uint16, mark uint64) error {
	if err := b.putSync(idMarkKey(node), binary.BigEndian.AppendUint64(nil, mark)); err != nil {
		return fmt.Errorf("store the id mark of node %d: %w", node, err)
	}
	return nil
}

// putSync writes key through the committer and waits for its sync.
func (b *Badger) putSync(key, value []byte) error {
	ch := make(chan error, 1)
	b.submit(op{key: key, value: value, done: func(err error) { ch <- err }})
	return <-ch
}

// MaxMessageID returns the largest id of node among the stored bodies, or
// 0, once the writes submitted before have been applied.
func (b *Badger) MaxMessageID(node uint16) (uint64, error) {
	if err := b.syncWait(); err != nil {
		return 0, fmt.Errorf("largest message id of node %d: %w", node, err)
	}
	var id uint64
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixBody}, Reverse: true})
		defer it.Close()
		it.Seek(bodyKey(MessageID(node, MaxCounter)))
		if !it.Valid() {
			return nil
		}
		k := it.Item().Key()
		if len(k) != 9 {
			return errors.New("malformed body key")
		}
		if found := binary.BigEndian.Uint64(k[1:]); NodeOf(found) == node {
			id = found
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("largest message id of node %d: %w", node, err)
	}
	return id, nil
}
