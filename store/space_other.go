//go:build !linux

package store

import (
	"fmt"
	"os"
)

// allocateFile creates path with size bytes written, so that they are not
// free space until it is deleted.
func allocateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create the disk ballast: %w", err)
	}
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("write the disk ballast: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("close the disk ballast: %w", err)
	}
	return nil
}
