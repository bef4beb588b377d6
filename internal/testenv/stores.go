package testenv

import (
	"path/filepath"
	"testing"

	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/store/boltstore"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
)

// RedisStore returns a redisstore.Store on the shared test Redis, under a
// key prefix of its own (see Redis); its keys are deleted when the test ends.
func RedisStore(tb testing.TB) store.Store {
	tb.Helper()
	client, prefix := Redis(tb)
	return redisstore.New(client, prefix)
}

// BoltStore returns a boltstore.Store on a fresh file in tb.TempDir(),
// closed when the test ends.
func BoltStore(tb testing.TB) store.Store {
	tb.Helper()
	s, err := boltstore.Open(filepath.Join(tb.TempDir(), "store.db"))
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return s
}

// Stores returns one factory per store adapter, by name ("redis", "bolt"),
// for tests that must pass on both:
//
//	for name, open := range testenv.Stores(t) {
//		t.Run(name, func(t *testing.T) {
//			st := open(t)
//			...
//		})
//	}
//
// Each call of a factory gives an empty store of the calling test's own.
func Stores(tb testing.TB) map[string]func(t *testing.T) store.Store {
	tb.Helper()
	return map[string]func(t *testing.T) store.Store{
		"redis": func(t *testing.T) store.Store { t.Helper(); return RedisStore(t) },
		"bolt":  func(t *testing.T) store.Store { t.Helper(); return BoltStore(t) },
	}
}

// EachStore runs fn against an empty store of every adapter (Stores), in
// parallel subtests named by the adapter.
func EachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	for name, open := range Stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}
