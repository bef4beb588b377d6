package auth

import (
	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
)

// Ownership says how a handler narrows an RPC to what the caller may touch,
// beyond the role check the interceptor does. Staff pass every ownership
// rule; it applies to institution and enterprise callers.
type Ownership int

const (
	// NoObject: the role check is all (staff-only functions, aggregates).
	NoObject Ownership = iota
	// OwnObject: the object must belong to the caller's organisation;
	// anyone else's answers NotFound, as if it did not exist.
	OwnObject
	// VisibleObject: a read that shows the caller its own objects and the
	// public ones (an ACTIVE institution in the directory); anything else
	// answers NotFound.
	VisibleObject
	// FilteredList: a list holding only what VisibleObject would show.
	FilteredList
	// CreateOwn: the caller creates objects only for its own organisation;
	// naming another answers PermissionDenied.
	CreateOwn
)

func (o Ownership) String() string {
	switch o {
	case NoObject:
		return "no object: the role decides"
	case OwnObject:
		return "own organisation's object only; others answer NotFound"
	case VisibleObject:
		return "own objects and public ones; others answer NotFound"
	case FilteredList:
		return "filtered to own objects and public ones"
	case CreateOwn:
		return "creates for its own organisation only; another answers PermissionDenied"
	}
	return "unknown"
}

// Rule is what one RPC allows.
type Rule struct {
	// Roles that may call it; any other role answers PermissionDenied.
	Roles []Role
	// Ownership is how the handler narrows it for non-staff callers.
	Ownership Ownership
	// Write marks a call that changes state: it counts against the caller's
	// write rate.
	Write bool
	// Note says in plain words what the rule protects, for docs/SECURITY.md.
	Note string
}

// Allows reports whether the role may call.
func (r Rule) Allows(role Role) bool {
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

var (
	all           = []Role{Staff, Institution, Enterprise}
	staffOnly     = []Role{Staff}
	staffAndInsts = []Role{Staff, Institution}
	staffAndEnts  = []Role{Staff, Enterprise}
)

// Table is the authorization table: full gRPC method name → rule. It is
// the one place every service declares who may call each of its RPCs. A
// method the server registers without an entry is refused (and the matrix
// test fails), so no RPC ships without its rule.
func Table() map[string]Rule {
	return map[string]Rule{
		// Registry.
		registryv1.RegistryService_RegisterInstitution_FullMethodName: {Roles: staffAndInsts, Ownership: CreateOwn, Write: true,
			Note: "an institution registers itself (credit code = its organisation); staff register any"},
		registryv1.RegistryService_GetInstitution_FullMethodName: {Roles: all, Ownership: VisibleObject,
			Note: "ACTIVE institutions form the public directory; others are seen by staff and themselves"},
		registryv1.RegistryService_ListInstitutions_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "non-staff see the ACTIVE directory plus their own record"},
		registryv1.RegistryService_UpdateInstitution_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution edits its own descriptive fields; never state, code or reviews"},
		registryv1.RegistryService_ApproveInstitution_FullMethodName: {Roles: staffOnly, Write: true,
			Note: "only staff review; no organisation reviews itself"},
		registryv1.RegistryService_RejectInstitution_FullMethodName: {Roles: staffOnly, Write: true,
			Note: "only staff review; no organisation reviews itself"},
		registryv1.RegistryService_SuspendInstitution_FullMethodName: {Roles: staffOnly, Write: true,
			Note: "only staff suspend"},
		registryv1.RegistryService_ReinstateInstitution_FullMethodName: {Roles: staffOnly, Write: true,
			Note: "only staff reinstate"},
		registryv1.RegistryService_GetRegistryStats_FullMethodName: {Roles: staffOnly,
			Note: "district figures are for staff"},

		// Catalog.
		catalogv1.CatalogService_CreateProduct_FullMethodName: {Roles: staffAndInsts, Ownership: CreateOwn, Write: true,
			Note: "an institution creates products for itself (the institution whose credit code is its organisation); staff for any"},
		catalogv1.CatalogService_GetProduct_FullMethodName: {Roles: all, Ownership: VisibleObject,
			Note: "PUBLISHED products are public; others are seen by staff and the owning institution"},
		catalogv1.CatalogService_ListProducts_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "non-staff see PUBLISHED products plus their own organisation's"},
		catalogv1.CatalogService_UpdateProduct_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution edits its own products' terms; never owner or state"},
		catalogv1.CatalogService_PublishProduct_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution publishes its own products, and only while ACTIVE"},
		catalogv1.CatalogService_PauseProduct_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution pauses its own products; staff any"},
		catalogv1.CatalogService_RetireProduct_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution retires its own products; staff any"},
		catalogv1.CatalogService_GetCatalogStats_FullMethodName: {Roles: staffOnly,
			Note: "district figures are for staff"},
		catalogv1.CatalogService_GetReferencePrices_FullMethodName: {Roles: all,
			Note: "reference carbon prices are public: every party sees how collateral is valued"},
		catalogv1.CatalogService_SetReferencePrices_FullMethodName: {Roles: staffOnly, Write: true,
			Note: "only staff set reference carbon prices"},
		// Matching.
		matchingv1.MatchingService_PostDemand_FullMethodName: {Roles: staffAndEnts, Ownership: CreateOwn, Write: true,
			Note: "an enterprise posts demand for itself (enterprise_credit_code = its organisation); staff post for any"},
		matchingv1.MatchingService_GetDemand_FullMethodName: {Roles: all, Ownership: VisibleObject,
			Note: "an enterprise sees its own demands, an institution the demands it holds a match on, with its own matches only"},
		matchingv1.MatchingService_ListDemands_FullMethodName: {Roles: staffAndEnts, Ownership: FilteredList,
			Note: "an enterprise lists its own demands only"},
		matchingv1.MatchingService_WithdrawDemand_FullMethodName: {Roles: staffAndEnts, Ownership: OwnObject, Write: true,
			Note: "an enterprise withdraws its own demands"},
		matchingv1.MatchingService_ListMatches_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "an institution lists its own matches, an enterprise its demands' matches"},
		matchingv1.MatchingService_ExplainMatch_FullMethodName: {Roles: staffAndEnts, Ownership: OwnObject,
			Note: "an enterprise asks why a product does or does not fit its own demand; staff for any"},
		matchingv1.MatchingService_AcceptMatch_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution accepts its own proposed matches, within the district's cap"},
		matchingv1.MatchingService_DeclineMatch_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "an institution declines its own proposed matches"},
		matchingv1.MatchingService_ConfirmMatch_FullMethodName: {Roles: staffAndEnts, Ownership: OwnObject, Write: true,
			Note: "an enterprise confirms one accepted match of its own demand"},
		matchingv1.MatchingService_ReportOutcome_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the institution reports the outcome of its own confirmed match"},
		matchingv1.MatchingService_WatchMatches_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "the live feed shows an institution its own matches, an enterprise its demands' matches, staff all"},
		matchingv1.MatchingService_GetMatchStats_FullMethodName: {Roles: staffOnly,
			Note: "district figures are for staff"},

		// Talent base. An event belongs to its host (an ACTIVE institution,
		// or the district: staff's alone); a registration to the event's
		// host and to the organisation that filed it; a talent profile to
		// its organisation.
		talentv1.TalentService_CreateEvent_FullMethodName: {Roles: staffAndInsts, Ownership: CreateOwn, Write: true,
			Note: "an ACTIVE institution hosts its own events (the institution whose credit code is its organisation); staff create district events or host for any ACTIVE institution"},
		talentv1.TalentService_GetEvent_FullMethodName: {Roles: all, Ownership: VisibleObject,
			Note: "a published event is public; a draft is seen by its host and staff"},
		talentv1.TalentService_ListEvents_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "non-staff see published events plus the drafts they host"},
		talentv1.TalentService_UpdateEvent_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the host edits its own events' details, never host or state; district events are staff's"},
		talentv1.TalentService_PublishEvent_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the host publishes its own events, and only while ACTIVE"},
		talentv1.TalentService_CloseEvent_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the host closes registration of its own events"},
		talentv1.TalentService_CompleteEvent_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the host marks its own events as held"},
		talentv1.TalentService_CancelEvent_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the host cancels its own events (every registrant gets a cancellation event); staff any"},
		talentv1.TalentService_GetEventStats_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject,
			Note: "the host reads its own events' figures (without event_id: the totals of what it hosts); staff any, and the district's totals"},
		talentv1.TalentService_RegisterForEvent_FullMethodName: {Roles: all, Ownership: NoObject, Write: true,
			Note: "anyone registers people for a published event; the registration belongs to the caller's organisation; a draft answers NotFound but to its host"},
		talentv1.TalentService_GetRegistration_FullMethodName: {Roles: all, Ownership: VisibleObject,
			Note: "seen by the event's host, the organisation that filed it, and staff; phone and e-mail masked but to the host and staff"},
		talentv1.TalentService_ListRegistrations_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "the host lists its events' registrations, anyone else what its organisation filed; phone and e-mail masked but to the host and staff"},
		talentv1.TalentService_CancelRegistration_FullMethodName: {Roles: all, Ownership: OwnObject, Write: true,
			Note: "the organisation that filed a registration, the event's host or staff cancel it"},
		talentv1.TalentService_CheckIn_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the event's host or staff check people in; the organisation that filed the registration may not (PermissionDenied)"},
		talentv1.TalentService_CorrectAttendance_FullMethodName: {Roles: staffAndInsts, Ownership: OwnObject, Write: true,
			Note: "the event's host or staff correct attendance, with a reason; the hours ledger follows"},
		talentv1.TalentService_CreateTalent_FullMethodName: {Roles: all, Ownership: CreateOwn, Write: true,
			Note: "an organisation adds profiles of its own people (organization_credit_code = its organisation); staff for any, or none"},
		talentv1.TalentService_GetTalent_FullMethodName: {Roles: all, Ownership: OwnObject,
			Note: "a profile is personal information: seen by its organisation and staff only"},
		talentv1.TalentService_ListTalents_FullMethodName: {Roles: all, Ownership: FilteredList,
			Note: "non-staff list their own organisation's profiles only"},
		talentv1.TalentService_UpdateTalent_FullMethodName: {Roles: all, Ownership: OwnObject, Write: true,
			Note: "an organisation edits its own people's profiles; only staff move one to another organisation; hours never"},
		talentv1.TalentService_GetHoursLedger_FullMethodName: {Roles: all, Ownership: OwnObject,
			Note: "a profile's hours are seen by its organisation and staff only"},
	}
}
