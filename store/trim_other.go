//go:build !linux

package store

// mappedTrimmer does nothing outside Linux.
type mappedTrimmer struct{}

func newMappedTrimmer(string, int64) (*mappedTrimmer, error) { return &mappedTrimmer{}, nil }

func (*mappedTrimmer) trim() (int64, error) { return 0, nil }
