package registry

import (
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/protoenum"
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
func (k Kind) String() string   { return protoenum.Key(k.p) }
func (t Tier) String() string   { return protoenum.Key(t.p) }
func (z Zone) String() string   { return protoenum.Key(z.p) }
func (s State) String() string  { return protoenum.Key(s.p) }
func (a Action) String() string { return protoenum.Key(a.p) }

// IsZero reports whether the value is not set.
func (k Kind) IsZero() bool  { return k.p == 0 }
func (t Tier) IsZero() bool  { return t.p == 0 }
func (z Zone) IsZero() bool  { return z.p == 0 }
func (s State) IsZero() bool { return s.p == 0 }

// ParseKind reads "BANK" or "INSTITUTION_KIND_BANK", in any case.
func ParseKind(s string) (Kind, error) {
	p, err := protoenum.Parse[registryv1.InstitutionKind](s)
	return Kind{p}, err
}

// ParseTier reads "BRANCH" or "TIER_BRANCH", in any case.
func ParseTier(s string) (Tier, error) {
	p, err := protoenum.Parse[registryv1.Tier](s)
	return Tier{p}, err
}

// ParseZone reads "FINANCE_AXIS" or "ZONE_FINANCE_AXIS", in any case.
func ParseZone(s string) (Zone, error) {
	p, err := protoenum.Parse[registryv1.Zone](s)
	return Zone{p}, err
}

// ParseState reads "ACTIVE" or "INSTITUTION_STATE_ACTIVE", in any case.
func ParseState(s string) (State, error) {
	p, err := protoenum.Parse[registryv1.InstitutionState](s)
	return State{p}, err
}

// Kinds, Tiers, Zones and States list every value in proto order.
func Kinds() []Kind { return protoenum.All(func(p registryv1.InstitutionKind) Kind { return Kind{p} }) }
func Tiers() []Tier { return protoenum.All(func(p registryv1.Tier) Tier { return Tier{p} }) }
func Zones() []Zone { return protoenum.All(func(p registryv1.Zone) Zone { return Zone{p} }) }
func States() []State {
	return protoenum.All(func(p registryv1.InstitutionState) State { return State{p} })
}

// The proto conversions. fromProto reports false, with the zero value, for
// a number the proto does not define; zero converts to the zero value.
func kindFromProto(p registryv1.InstitutionKind) (Kind, bool) {
	return Kind{protoenum.Known(p)}, p == protoenum.Known(p)
}
func tierFromProto(p registryv1.Tier) (Tier, bool) {
	return Tier{protoenum.Known(p)}, p == protoenum.Known(p)
}
func zoneFromProto(p registryv1.Zone) (Zone, bool) {
	return Zone{protoenum.Known(p)}, p == protoenum.Known(p)
}
func stateFromProto(p registryv1.InstitutionState) (State, bool) {
	return State{protoenum.Known(p)}, p == protoenum.Known(p)
}
func actionFromProto(p registryv1.ReviewAction) (Action, bool) {
	return Action{protoenum.Known(p)}, p == protoenum.Known(p)
}

func (k Kind) proto() registryv1.InstitutionKind   { return k.p }
func (t Tier) proto() registryv1.Tier              { return t.p }
func (z Zone) proto() registryv1.Zone              { return z.p }
func (s State) proto() registryv1.InstitutionState { return s.p }
func (a Action) proto() registryv1.ReviewAction    { return a.p }
