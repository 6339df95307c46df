package store

import (
	"encoding/binary"
)

// Key scheme (see doc.go).
var (
	keyFormat = []byte("f")
	keyNode   = []byte("n")
)

const (
	prefixMeta  = 'M'
	prefixBody  = 'b'
	prefixIndex = 'q'
	prefixPaged = 'p'
	prefixMark  = 'i'
)

// idMarkKey is the key of node's message counter mark: i and the node id.
func idMarkKey(node uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte{prefixMark}, node)
}

func metaKey(kind, key string) []byte {
	k := make([]byte, 0, 2+len(kind)+len(key))
	k = append(k, prefixMeta)
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, key...)
}

func bodyKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixBody}, id)
}

// indexPrefix is q, the queue name's length (2 bytes) and the name.
func indexPrefix(queue string) []byte { return queuePrefix(prefixIndex, queue) }

func indexKey(queue string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(indexPrefix(queue), id)
}

// pagedKey is the key of a paged-out transient message: p, the queue
// name's length and the name, and the id.
func pagedKey(queue string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(queuePrefix(prefixPaged, queue), id)
}

func queuePrefix(prefix byte, queue string) []byte {
	k := make([]byte, 0, 3+len(queue)+8)
	k = append(k, prefix)
	k = binary.BigEndian.AppendUint16(k, uint16(len(queue)))
	return append(k, queue...)
}

// indexValue is an index entry's value: the delivered flag (0 or 1) and
// the message's body size as a uvarint.
func indexValue(delivered bool, size int) []byte {
	v := make([]byte, 1, 1+binary.MaxVarintLen64)
	if delivered {
		v[0] = 1
	}
	return binary.AppendUvarint(v, uint64(size))
}

// parseIndexValue reads an index entry's value. Entries written before
// sizes were recorded have size 0.
func parseIndexValue(v []byte) (delivered bool, size int) {
	if len(v) == 0 {
		return false, 0
	}
	n, _ := binary.Uvarint(v[1:])
	return v[0] == 1, int(n)
}

// parseIndexKey splits an index key into queue and id.
func parseIndexKey(k []byte) (string, uint64, bool) {
	if len(k) < 3 || k[0] != prefixIndex {
		return "", 0, false
	}
	n := int(binary.BigEndian.Uint16(k[1:]))
	if len(k) != 3+n+8 {
		return "", 0, false
	}
	return string(k[3 : 3+n]), binary.BigEndian.Uint64(k[3+n:]), true
}
