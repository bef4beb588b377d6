package protoenum_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

func TestKey(t *testing.T) {
	for _, tt := range []struct {
		in   registryv1.InstitutionKind
		want string
	}{
		{registryv1.InstitutionKind_INSTITUTION_KIND_BANK, "BANK"},
		{registryv1.InstitutionKind_INSTITUTION_KIND_CARBON_ASSET_MANAGER, "CARBON_ASSET_MANAGER"},
		{0, ""},
		{99, ""},
	} {
		if got := protoenum.Key(tt.in); got != tt.want {
			t.Errorf("Key(%d) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    registryv1.Zone
		wantErr string
	}{
		{"FINANCE_AXIS", registryv1.Zone_ZONE_FINANCE_AXIS, ""},
		{"zone_finance_park", registryv1.Zone_ZONE_FINANCE_PARK, ""},
		{"  riverside_belt ", registryv1.Zone_ZONE_RIVERSIDE_BELT, ""},
		{"", 0, ""},
		{"UNSPECIFIED", 0, `unknown value "UNSPECIFIED"; known: FINANCE_AXIS, RIVERSIDE_BELT, FINANCE_PARK, OTHER_WUCHANG, OUTSIDE_DISTRICT`},
		{"moon", 0, `unknown value "MOON"; known: FINANCE_AXIS, RIVERSIDE_BELT, FINANCE_PARK, OTHER_WUCHANG, OUTSIDE_DISTRICT`},
	} {
		got, err := protoenum.Parse[registryv1.Zone](tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.wantErr {
			t.Errorf("Parse(%q) = %v, %q; want %v, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
		}
	}
}

func TestKnown(t *testing.T) {
	for _, tt := range []struct {
		in, want registryv1.Tier
	}{
		{registryv1.Tier_TIER_BRANCH, registryv1.Tier_TIER_BRANCH},
		{0, 0},
		{42, 0},
		{-1, 0},
	} {
		if got := protoenum.Known(tt.in); got != tt.want {
			t.Errorf("Known(%d) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestLists(t *testing.T) {
	if diff := cmp.Diff([]string{"LEGAL_ENTITY", "REGIONAL_HQ", "BRANCH"}, protoenum.Keys[registryv1.Tier]()); diff != "" {
		t.Errorf("Keys (-want +got):\n%s", diff)
	}
	got := protoenum.All(func(p registryv1.Tier) registryv1.Tier { return p })
	want := []registryv1.Tier{registryv1.Tier_TIER_LEGAL_ENTITY, registryv1.Tier_TIER_REGIONAL_HQ, registryv1.Tier_TIER_BRANCH}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"TIER_LEGAL_ENTITY", "TIER_BRANCH"}, protoenum.Strings([]registryv1.Tier{registryv1.Tier_TIER_LEGAL_ENTITY, registryv1.Tier_TIER_BRANCH})); diff != "" {
		t.Errorf("Strings (-want +got):\n%s", diff)
	}
	if got := protoenum.Prefix(registryv1.InstitutionState(0).Descriptor()); got != "INSTITUTION_STATE_" {
		t.Errorf("Prefix = %q; want INSTITUTION_STATE_", got)
	}
}
