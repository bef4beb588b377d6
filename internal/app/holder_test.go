package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
	"github.com/carbondesk/carbondesk/internal/lease"
	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestRestartTakesBackItsLeases: a desk on the embedded store and an
// external NATS keeps its lease holder id in its data folder, so after a
// crash (its lease keys left behind, unexpired) the restarted desk takes
// them back at once rather than after the lease TTL; a lease held by
// another holder it leaves alone.
func TestRestartTakesBackItsLeases(t *testing.T) {
	ns := testenv.StartNATS(t, natsx.Options{Listen: "127.0.0.1:0"})
	js := testenv.JetStream(t, ns)
	cfg := app.Defaults()
	cfg.DataDir, cfg.GRPCAddr, cfg.HTTPAddr, cfg.NATSURL = t.TempDir(), "127.0.0.1:0", "", ns.ClientURL()
	cfg.Services, cfg.LeaseTTL, cfg.Seed = []string{"registry"}, time.Minute, false
	_, stop := apptest.Start(t, cfg, nil, 30*time.Second)
	stop()
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, app.HolderFile))
	if err != nil {
		t.Fatal(err)
	}
	holder := strings.TrimSpace(string(b))
	ctx := t.Context()
	kv, err := js.KeyValue(ctx, lease.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	const key = "registry.outbox"
	revision := func() uint64 {
		t.Helper()
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatalf("lease %s: %v", key, err)
		}
		return e.Revision()
	}
	waitRevision := func(after uint64, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if revision() > after {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}

	// The crash: the stop above released the lease cleanly, so put back
	// what a killed desk leaves, its own id in the key.
	if _, err := kv.Put(ctx, key, []byte(holder)); err != nil {
		t.Fatal(err)
	}
	left := revision()
	_, stop = apptest.Start(t, cfg, nil, 30*time.Second)
	if !waitRevision(left, 10*time.Second) {
		t.Fatalf("the restarted desk did not take back its lease %s within 10 s (TTL 1 min)", key)
	}
	if e, _ := kv.Get(ctx, key); string(e.Value()) != holder {
		t.Fatalf("lease %s held by %q, want the desk's own %q", key, e.Value(), holder)
	}
	stop()

	// Another holder's unexpired lease is not taken.
	if _, err := kv.Put(ctx, key, []byte("another-desk")); err != nil {
		t.Fatal(err)
	}
	other := revision()
	_, stop = apptest.Start(t, cfg, nil, 30*time.Second)
	defer stop()
	if waitRevision(other, 3*time.Second) {
		e, _ := kv.Get(ctx, key)
		t.Fatalf("the desk took a lease held by another holder: now %q", e.Value())
	}
}
