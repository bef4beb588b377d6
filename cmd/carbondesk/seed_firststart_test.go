package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// After the desk's own first-start seeding, 'carbondesk seed' finds
// everything it would load there already, every answer given: the two
// seedings agree on what the files mean.
func TestSeedAfterFirstStartSeeding(t *testing.T) {
	d := startDeskSeeded(t, true)
	staff := d.staff
	addr := map[string]string{"": d.addr}
	before := snapshot(t, addr, staff)

	counts := runSeed(t, "--server", d.addr, "--data", d.data)
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
