package catalog

import (
	"log/slog"
	"os"
	"testing"
	"time"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/testenv"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TestLoadSeeds loads the registry's seeds into a real registry whose relay
// publishes to JetStream, and the catalog's seeds right after, as the
// binary does on first start: LoadSeeds waits for the feed to bring the
// institutions, then loads every product into its state. A second load
// creates nothing.
func TestLoadSeeds(t *testing.T) {
	t.Parallel()
	e := startFeed(t, testenv.BoltStore(t))
	regStore := testenv.RedisStore(t)
	relay := outbox.New(regStore, e.js, slog.New(slog.DiscardHandler), outbox.Options{})
	testenv.Background(t, "registry relay", relay.Run)
	reg := registry.New(outbox.Notifying(regStore, relay))
	if err := registry.LoadSeeds(t.Context(), reg, seeds.FS); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := LoadSeeds(t.Context(), e.s, seeds.FS); err != nil {
		t.Fatal(err)
	}
	t.Logf("catalog seeds loaded %s after the registry's", time.Since(start).Round(time.Millisecond))

	stats, err := e.s.GetCatalogStats(staffCtx(t), &catalogv1.GetCatalogStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.GetTotal() < 120 {
		t.Errorf("%d products seeded, want at least 120", stats.GetTotal())
	}
	for _, c := range stats.GetByCategory() {
		if c.GetCount() == 0 {
			t.Errorf("no seeded product in category %s", c.GetKey())
		}
	}
	for _, c := range stats.GetByState() {
		if c.GetCount() == 0 {
			t.Errorf("no seeded product in state %s", c.GetKey())
		}
	}
	for _, c := range stats.GetByInstitutionKind() {
		if c.GetKey() == "UNKNOWN" {
			t.Errorf("%d products of institutions the view does not know", c.GetCount())
		}
	}
	prices, err := e.s.GetReferencePrices(t.Context(), &catalogv1.GetReferencePricesRequest{})
	if err != nil || prices.GetCurrent().GetCeaYuanPerTonne() == 0 {
		t.Errorf("seeded reference prices: %v %v", prices, err)
	}

	// Again: nothing new.
	if err := LoadSeeds(t.Context(), e.s, seeds.FS); err != nil {
		t.Fatal(err)
	}
	again, err := e.s.GetCatalogStats(staffCtx(t), &catalogv1.GetCatalogStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetTotal() != stats.GetTotal() {
		t.Errorf("second load: %d products, first %d", again.GetTotal(), stats.GetTotal())
	}
}

// TestLoadSeedsWaitsThenFails: without the registry's events, LoadSeeds
// says what it waited for instead of loading products without owners.
func TestLoadSeedsWaitsThenFails(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testenv.BoltStore(t), WithSeedWait(200*time.Millisecond))
	err := LoadSeeds(t.Context(), s, os.DirFS("../../seeds"))
	if err == nil {
		t.Fatal("LoadSeeds without institutions succeeded")
	}
	t.Log(err)
}
