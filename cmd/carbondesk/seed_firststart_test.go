package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/app/apptest"
)

// After the desk's own first-start seeding, 'carbondesk seed' finds
// everything it would load there already, every answer given: the two
// seedings agree on what the files mean.
func TestSeedAfterFirstStartSeeding(t *testing.T) {
	cfg := app.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = ""
	cfg.Seed = true
	cfg.ShutdownTimeout = 5 * time.Second
	r, _ := apptest.Start(t, cfg, nil, 60*time.Second)
	staff, err := mintStaffToken(cfg.DataDir, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := map[string]string{"": r.GRPCAddr}
	before := snapshot(t, addr, staff)

	counts := runSeed(t, "--server", r.GRPCAddr, "--data", cfg.DataDir)
	for _, c := range counts {
		if c.Created != 0 {
			t.Errorf("seed after the desk's own seeding created %d %s, want 0", c.Created, c.Kind)
		}
		if c.Skipped == 0 {
			t.Errorf("seed after the desk's own seeding found no %s", c.Kind)
		}
		if c.Kind == "match answers" && c.Skipped != wantAnswers(t).steps {
			t.Errorf("seed after the desk's own seeding found %d match answers given, want the seed files' %d", c.Skipped, wantAnswers(t).steps)
		}
	}
	if diff := cmp.Diff(before, snapshot(t, addr, staff)); diff != "" {
		t.Errorf("seed changed the desk (-before +after):\n%s", diff)
	}
}
