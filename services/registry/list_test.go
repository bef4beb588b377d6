package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestListPaging registers a few hundred institutions and pages through
// them with filters and page sizes: every page but the last is full, and
// the pages together hold exactly the matching institutions, in
// registration order, none lost or repeated.
func TestListPaging(t *testing.T) {
	t.Parallel()
	const n = 240
	kinds, tiers, zones := Kinds(), Tiers(), Zones()
	type row struct {
		id     string
		kind   Kind
		tier   Tier
		zone   Zone
		state  State
		zh, en string
	}
	stateOf := func(i int) State {
		switch {
		case i%7 == 0:
			return StatePending
		case i%13 == 0:
			return StateSuspended
		case i%17 == 0:
			return StateRejected
		}
		return StateActive
	}
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		rows := make([]row, n)
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range work {
					r := row{kind: kinds[i%len(kinds)], tier: tiers[i%len(tiers)], zone: zones[i%len(zones)], state: stateOf(i),
						zh: fmt.Sprintf("测试碳金融机构%03d号", i), en: fmt.Sprintf("Test Carbon Institution %03d", i)}
					if i%4 == 0 {
						r.zh = fmt.Sprintf("绿色测试机构%03d号", i)
					}
					if i%6 == 0 {
						r.en = fmt.Sprintf("Green Test Institution %03d", i)
					}
					req := validRequest(t)
					req.NameZh, req.NameEn, req.Kind, req.Tier, req.Zone = r.zh, r.en, r.kind.proto(), r.tier.proto(), r.zone.proto()
					resp, err := s.RegisterInstitution(staffCtx(t), req)
					if err != nil {
						t.Error(err)
						continue
					}
					r.id = resp.GetInstitution().GetId()
					for _, a := range seedPaths[r.state] {
						if _, err := s.review(staffCtx(t), a, r.id, "paging test", 0); err != nil {
							t.Error(err)
						}
					}
					rows[i] = r
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.id, b.id) })

		tests := []struct {
			name string
			req  *registryv1.ListInstitutionsRequest
			keep func(row) bool
		}{
			{"all, default size", &registryv1.ListInstitutionsRequest{}, func(row) bool { return true }},
			{"all, pages of 7", &registryv1.ListInstitutionsRequest{PageSize: 7}, func(row) bool { return true }},
			{"all, size above the cap", &registryv1.ListInstitutionsRequest{PageSize: 1000}, func(row) bool { return true }},
			{"kind", &registryv1.ListInstitutionsRequest{PageSize: 5, Kind: KindBank.proto()},
				func(r row) bool { return r.kind == KindBank }},
			{"pending", &registryv1.ListInstitutionsRequest{PageSize: 4, State: StatePending.proto()},
				func(r row) bool { return r.state == StatePending }},
			{"active on the axis", &registryv1.ListInstitutionsRequest{PageSize: 9, State: StateActive.proto(), Zone: ZoneFinanceAxis.proto()},
				func(r row) bool { return r.state == StateActive && r.zone == ZoneFinanceAxis }},
			{"active verifier branches", &registryv1.ListInstitutionsRequest{PageSize: 2, State: StateActive.proto(), Kind: KindVerifier.proto(), Tier: TierBranch.proto()},
				func(r row) bool { return r.state == StateActive && r.kind == KindVerifier && r.tier == TierBranch }},
			{"English name, any case", &registryv1.ListInstitutionsRequest{PageSize: 6, NameContains: "GREEN test"},
				func(r row) bool { return strings.Contains(r.en, "Green Test") }},
			{"full-width search text", &registryv1.ListInstitutionsRequest{PageSize: 6, NameContains: "ｇｒｅｅｎ"},
				func(r row) bool { return strings.Contains(r.en, "Green") }},
			{"Chinese name with a state", &registryv1.ListInstitutionsRequest{PageSize: 10, NameContains: "绿色", State: StateActive.proto()},
				func(r row) bool { return strings.Contains(r.zh, "绿色") && r.state == StateActive }},
			{"nothing matches", &registryv1.ListInstitutionsRequest{PageSize: 3, NameContains: "没有这个名字"},
				func(row) bool { return false }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var want []string
				for _, r := range rows {
					if tt.keep(r) {
						want = append(want, r.id)
					}
				}
				if (len(want) == 0) != (tt.name == "nothing matches") {
					t.Fatalf("the test data give %d matches; make the filter meaningful", len(want))
				}
				size := int(tt.req.GetPageSize())
				switch {
				case size == 0:
					size = paging.DefaultSize
				case size > paging.MaxSize:
					size = paging.MaxSize
				}
				var got []string
				req := tt.req
				for pages := 0; ; pages++ {
					if pages > n {
						t.Fatal("paging does not end")
					}
					resp, err := s.ListInstitutions(t.Context(), req)
					if err != nil {
						t.Fatalf("page %d: %v", pages, err)
					}
					for _, in := range resp.GetInstitutions() {
						got = append(got, in.GetId())
					}
					if resp.GetNextPageToken() == "" {
						break
					}
					if len(resp.GetInstitutions()) != size {
						t.Errorf("page %d has %d institutions and a next page; want full pages of %d", pages, len(resp.GetInstitutions()), size)
					}
					req = cloneReq(tt.req)
					req.PageToken = resp.GetNextPageToken()
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("institutions listed (-want +got):\n%s", diff)
				}
			})
		}

		t.Run("token bound to filters", func(t *testing.T) {
			t.Parallel()
			first, err := s.ListInstitutions(t.Context(), &registryv1.ListInstitutionsRequest{PageSize: 3, Kind: KindBank.proto()})
			if err != nil {
				t.Fatal(err)
			}
			tok := first.GetNextPageToken()
			bad := []*registryv1.ListInstitutionsRequest{
				{PageSize: 3, PageToken: tok},
				{PageSize: 3, PageToken: tok, Kind: KindTrust.proto()},
				{PageSize: 3, PageToken: tok, Kind: KindBank.proto(), NameContains: "x"},
				{PageSize: 3, PageToken: "not-a-token"},
				{PageSize: 3, PageToken: tok[:len(tok)/2]},
			}
			for _, req := range bad {
				_, err := s.ListInstitutions(t.Context(), req)
				if diff := cmp.Diff([]string{"page_token"}, violationFields(err)); diff != "" {
					t.Errorf("%v: err %v; violations (-want +got):\n%s", req, err, diff)
				}
			}
			// Another page size with the same filters is fine (AIP-158).
			if _, err := s.ListInstitutions(t.Context(), &registryv1.ListInstitutionsRequest{PageSize: 10, PageToken: tok, Kind: KindBank.proto()}); err != nil {
				t.Errorf("same filters, other page size: %v", err)
			}
		})
		t.Run("bad requests", func(t *testing.T) {
			t.Parallel()
			_, err := s.ListInstitutions(t.Context(), &registryv1.ListInstitutionsRequest{PageSize: -1, Kind: 99, State: 9, NameContains: strings.Repeat("碳", 101)})
			if diff := cmp.Diff([]string{"page_size", "kind", "state", "name_contains"}, violationFields(err)); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
			if code(err) != codes.InvalidArgument {
				t.Errorf("code %v, want InvalidArgument", code(err))
			}
		})
	})
}

func cloneReq(r *registryv1.ListInstitutionsRequest) *registryv1.ListInstitutionsRequest {
	return &registryv1.ListInstitutionsRequest{PageSize: r.PageSize, PageToken: r.PageToken, Kind: r.Kind, Tier: r.Tier, Zone: r.Zone, State: r.State, NameContains: r.NameContains}
}

// TestLoadSeeds loads the real seed file twice: the first load registers
// every institution and reviews it to its state, the second changes nothing.
func TestLoadSeeds(t *testing.T) {
	t.Parallel()
	fsys := os.DirFS("../../seeds")
	raw, err := fs.ReadFile(fsys, SeedPath)
	if err != nil {
		t.Fatal(err)
	}
	var file SeedFile
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	wantStates := map[string]int64{}
	seen := map[string]bool{}
	for _, sd := range file.Institutions {
		code, err := ValidateCreditCode(sd.CreditCode)
		if err != nil {
			t.Errorf("seed %s: %v", sd.NameZh, err)
		}
		if seen[code] {
			t.Errorf("seed %s: code %s appears twice", sd.NameZh, code)
		}
		seen[code] = true
		wantStates[sd.State]++
	}
	if len(file.Institutions) < 40 {
		t.Errorf("%d seeds, want about 40", len(file.Institutions))
	}

	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		if err := LoadSeeds(t.Context(), s, fsys); err != nil {
			t.Fatalf("first load: %v", err)
		}
		events := len(pending(t, st))
		if err := LoadSeeds(t.Context(), s, fsys); err != nil {
			t.Fatalf("second load: %v", err)
		}
		if got := len(pending(t, st)); got != events {
			t.Errorf("second load wrote %d events", got-events)
		}
		stats, err := s.GetRegistryStats(t.Context(), &registryv1.GetRegistryStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		gotStates := map[string]int64{}
		for _, c := range stats.GetByState() {
			if c.GetCount() > 0 {
				gotStates[c.GetKey()] = c.GetCount()
			}
		}
		if diff := cmp.Diff(wantStates, gotStates); diff != "" {
			t.Errorf("states after two loads (-want +got):\n%s", diff)
		}
		for _, dim := range [][]*registryv1.Count{stats.GetByKind(), stats.GetByTier(), stats.GetByZone()} {
			for _, c := range dim {
				if c.GetCount() == 0 {
					t.Errorf("no seed with %s", c.GetKey())
				}
			}
		}
		// Reviews are the system's.
		list, err := s.ListInstitutions(t.Context(), &registryv1.ListInstitutionsRequest{State: StateSuspended.proto()})
		if err != nil || len(list.GetInstitutions()) != 1 {
			t.Fatalf("suspended seeds: %v, %v", list, err)
		}
		var actors []string
		for _, r := range list.GetInstitutions()[0].GetReviews() {
			actors = append(actors, r.GetAction().String()+" by "+r.GetActor())
		}
		if diff := cmp.Diff([]string{"REVIEW_ACTION_APPROVE by system", "REVIEW_ACTION_SUSPEND by system"}, actors); diff != "" {
			t.Errorf("reviews of the suspended seed (-want +got):\n%s", diff)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		s, _ := newTestServer(t, nil)
		if err := LoadSeeds(t.Context(), s, os.DirFS(t.TempDir())); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
}
