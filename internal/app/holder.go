package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// HolderFile, in the data folder, names this desk in the lease keys.
const HolderFile = "lease-holder"

// loadOrCreateHolder returns the lease holder id kept in dataDir, making one
// on first use. With the embedded store the data folder belongs to one
// process at a time (bbolt locks its files), so the id names that process
// across restarts: after a crash, the restarted desk finds its own id in
// the lease keys and takes them back at once, instead of waiting out the
// lease TTL with its outbox unpublished. With Redis, replicas may share a
// folder image, so each process keeps a random id of its own instead.
func loadOrCreateHolder(dataDir string) (string, error) {
	path := filepath.Join(dataDir, HolderFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
		return "", fmt.Errorf("lease holder file %s is empty: delete it and start again", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("lease holder file: %w", err)
	}
	id := "desk-" + rand.Text()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateHolder(dataDir)
	}
	if err != nil {
		return "", fmt.Errorf("lease holder file: %w", err)
	}
	if _, err := f.WriteString(id + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("lease holder file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("lease holder file: %w", err)
	}
	return id, f.Close()
}
