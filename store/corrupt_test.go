package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCorruptedStoreFailsClearly(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutMeta("queue", "q", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("this is not a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, DefaultOptions())
	if err == nil {
		t.Fatal("a store with a corrupted MANIFEST opened (it would have come up empty)")
	}
	if !strings.Contains(err.Error(), "open store in "+dir) {
		t.Fatalf("error does not name the data dir: %v", err)
	}
}
