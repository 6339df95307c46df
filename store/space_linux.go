//go:build linux

package store

import (
	"fmt"
	"os"
	"syscall"
)

// allocateFile creates path with size bytes allocated on disk
// (fallocate), so that they are not free space until it is deleted.
func allocateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create the disk ballast: %w", err)
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("allocate the disk ballast (%d bytes): %w", size, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("close the disk ballast: %w", err)
	}
	return nil
}
