package registry

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
)

// The enums below wrap the proto enums in structs with an unexported field,
// so a value outside this package is either the zero value ("not set") or
// one of the variables listed here: parsing and proto conversion refuse
// numbers the proto does not define, which a proto3 enum field can carry.

// Kind is what sort of carbon-finance institution it is.
type Kind struct{ p registryv1.InstitutionKind }

// Tier is the institution's standing in its group.
type Tier struct{ p registryv1.Tier }

// Zone is where in the district's "one axis, one belt, many parks" layout an
// institution sits.
type Zone struct{ p registryv1.Zone }

// State is the review state.
type State struct{ p registryv1.InstitutionState }

// Action is what a reviewer does to an institution.
type Action struct{ p registryv1.ReviewAction }

// The values. The zero value of each type means "not set".
var (
	KindBank               = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_BANK}
	KindSecurities         = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_SECURITIES}
	KindInsurance          = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_INSURANCE}
	KindFutures            = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_FUTURES}
	KindFundManager        = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_FUND_MANAGER}
	KindTrust              = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_TRUST}
	KindCarbonAssetManager = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_CARBON_ASSET_MANAGER}
	KindVerifier           = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_VERIFIER}
	KindConsultancy        = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_CONSULTANCY}
	KindExchange           = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_EXCHANGE}
	KindOther              = Kind{registryv1.InstitutionKind_INSTITUTION_KIND_OTHER}

	TierLegalEntity = Tier{registryv1.Tier_TIER_LEGAL_ENTITY}
	TierRegionalHQ  = Tier{registryv1.Tier_TIER_REGIONAL_HQ}
	TierBranch      = Tier{registryv1.Tier_TIER_BRANCH}

	ZoneFinanceAxis     = Zone{registryv1.Zone_ZONE_FINANCE_AXIS}
	ZoneRiversideBelt   = Zone{registryv1.Zone_ZONE_RIVERSIDE_BELT}
	ZoneFinancePark     = Zone{registryv1.Zone_ZONE_FINANCE_PARK}
	ZoneOtherWuchang    = Zone{registryv1.Zone_ZONE_OTHER_WUCHANG}
	ZoneOutsideDistrict = Zone{registryv1.Zone_ZONE_OUTSIDE_DISTRICT}

	StatePending   = State{registryv1.InstitutionState_INSTITUTION_STATE_PENDING}
	StateActive    = State{registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE}
	StateRejected  = State{registryv1.InstitutionState_INSTITUTION_STATE_REJECTED}
	StateSuspended = State{registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED}

	ActionApprove   = Action{registryv1.ReviewAction_REVIEW_ACTION_APPROVE}
	ActionReject    = Action{registryv1.ReviewAction_REVIEW_ACTION_REJECT}
	ActionSuspend   = Action{registryv1.ReviewAction_REVIEW_ACTION_SUSPEND}
	ActionReinstate = Action{registryv1.ReviewAction_REVIEW_ACTION_REINSTATE}
)

// String is the value's short name ("BANK", "FINANCE_AXIS"), the same key
// the stats and index terms use; "" when not set.
func (k Kind) String() string   { return enumKey(k.p) }
func (t Tier) String() string   { return enumKey(t.p) }
func (z Zone) String() string   { return enumKey(z.p) }
func (s State) String() string  { return enumKey(s.p) }
func (a Action) String() string { return enumKey(a.p) }

// IsZero reports whether the value is not set.
func (k Kind) IsZero() bool  { return k.p == 0 }
func (t Tier) IsZero() bool  { return t.p == 0 }
func (z Zone) IsZero() bool  { return z.p == 0 }
func (s State) IsZero() bool { return s.p == 0 }

// ParseKind reads "BANK" or "INSTITUTION_KIND_BANK", in any case.
func ParseKind(s string) (Kind, error) {
	p, err := parseEnum[registryv1.InstitutionKind](s)
	return Kind{p}, err
}

// ParseTier reads "BRANCH" or "TIER_BRANCH", in any case.
func ParseTier(s string) (Tier, error) {
	p, err := parseEnum[registryv1.Tier](s)
	return Tier{p}, err
}

// ParseZone reads "FINANCE_AXIS" or "ZONE_FINANCE_AXIS", in any case.
func ParseZone(s string) (Zone, error) {
	p, err := parseEnum[registryv1.Zone](s)
	return Zone{p}, err
}

// ParseState reads "ACTIVE" or "INSTITUTION_STATE_ACTIVE", in any case.
func ParseState(s string) (State, error) {
	p, err := parseEnum[registryv1.InstitutionState](s)
	return State{p}, err
}

// Kinds, Tiers, Zones and States list every value in proto order.
func Kinds() []Kind   { return allEnum(func(p registryv1.InstitutionKind) Kind { return Kind{p} }) }
func Tiers() []Tier   { return allEnum(func(p registryv1.Tier) Tier { return Tier{p} }) }
func Zones() []Zone   { return allEnum(func(p registryv1.Zone) Zone { return Zone{p} }) }
func States() []State { return allEnum(func(p registryv1.InstitutionState) State { return State{p} }) }

// protoEnum is a generated proto enum type.
type protoEnum interface {
	~int32
	Descriptor() protoreflect.EnumDescriptor
	Number() protoreflect.EnumNumber
}

// enumKey is a value's name without the enum's prefix:
// INSTITUTION_KIND_BANK -> BANK. Zero and undefined numbers give "".
func enumKey[P protoEnum](p P) string {
	if p == 0 {
		return ""
	}
	v := p.Descriptor().Values().ByNumber(p.Number())
	if v == nil {
		return ""
	}
	return strings.TrimPrefix(string(v.Name()), enumPrefix(p.Descriptor()))
}

// enumPrefix is the prefix shared by an enum's value names, taken from its
// zero value: INSTITUTION_KIND_UNSPECIFIED -> INSTITUTION_KIND_.
func enumPrefix(d protoreflect.EnumDescriptor) string {
	return strings.TrimSuffix(string(d.Values().ByNumber(0).Name()), "UNSPECIFIED")
}

// parseEnum reads a value by its short or full name. "" parses as zero
// (not set); an unknown name is an error listing the known ones.
func parseEnum[P protoEnum](s string) (P, error) {
	var zero P
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return zero, nil
	}
	d := zero.Descriptor()
	prefix := enumPrefix(d)
	vals := d.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		if v.Number() == 0 {
			continue
		}
		if name := string(v.Name()); name == s || name == prefix+s {
			return P(v.Number()), nil
		}
	}
	return zero, fmt.Errorf("unknown value %q; known: %s", s, strings.Join(enumKeys[P](), ", "))
}

// enumKeys lists the short names of an enum's values, zero left out.
func enumKeys[P protoEnum]() []string {
	var keys []string
	for _, p := range allEnum(func(p P) P { return p }) {
		keys = append(keys, enumKey(p))
	}
	return keys
}

func allEnum[P protoEnum, T any](wrap func(P) T) []T {
	var zero P
	vals := zero.Descriptor().Values()
	out := make([]T, 0, vals.Len()-1)
	for i := range vals.Len() {
		if n := vals.Get(i).Number(); n != 0 {
			out = append(out, wrap(P(n)))
		}
	}
	return out
}

// The proto conversions. fromProto reports false, with the zero value, for
// a number the proto does not define; zero converts to the zero value.
func kindFromProto(p registryv1.InstitutionKind) (Kind, bool) {
	return Kind{known(p)}, p == known(p)
}
func tierFromProto(p registryv1.Tier) (Tier, bool) { return Tier{known(p)}, p == known(p) }
func zoneFromProto(p registryv1.Zone) (Zone, bool) { return Zone{known(p)}, p == known(p) }
func stateFromProto(p registryv1.InstitutionState) (State, bool) {
	return State{known(p)}, p == known(p)
}
func actionFromProto(p registryv1.ReviewAction) (Action, bool) {
	return Action{known(p)}, p == known(p)
}

// known is p when the proto defines it, else zero.
func known[P protoEnum](p P) P {
	if p.Descriptor().Values().ByNumber(p.Number()) == nil {
		return 0
	}
	return p
}

func (k Kind) proto() registryv1.InstitutionKind   { return k.p }
func (t Tier) proto() registryv1.Tier              { return t.p }
func (z Zone) proto() registryv1.Zone              { return z.p }
func (s State) proto() registryv1.InstitutionState { return s.p }
func (a Action) proto() registryv1.ReviewAction    { return a.p }
