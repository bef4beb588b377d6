package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/width"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Server implements registryv1.RegistryServiceServer over a store.Store.
// Every RPC is implemented; the embedded Unimplemented server is only the
// generated code's forward-compatibility base. Handlers return domain errors
// (package errs); the gRPC server's interceptor turns them into statuses.
type Server struct {
	registryv1.UnimplementedRegistryServiceServer

	st  store.Store
	now func() time.Time
	log *slog.Logger
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock (default time.Now); tests pin it.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// New returns the registry service over st, which must be scoped to the
// registry (see store.Store).
func New(st store.Store, opts ...Option) *Server {
	s := &Server{st: st, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register registers the service on a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	registryv1.RegisterRegistryServiceServer(g, s)
}

// RegisterInstitution files a new institution; it starts PENDING.
func (s *Server) RegisterInstitution(ctx context.Context, req *registryv1.RegisterInstitutionRequest) (*registryv1.RegisterInstitutionResponse, error) {
	code, d, err := validateRegister(req)
	if err != nil {
		return nil, err
	}
	if !auth.Owns(ctx, code) {
		return nil, errs.PermissionDenied("an institution registers only itself: credit_code %s is not your organisation's", code)
	}
	if w := CreditCodeWarning(code); w != "" {
		s.log.WarnContext(ctx, "registry: unusual credit code accepted", "credit_code", code, "note", w)
	}
	now := s.now().UTC()
	in := NewInstitution(events.NewID(now), code, d, now)
	if err := s.create(ctx, in, SubjectRegistered, now); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "registry: institution registered", "id", in.ID, "credit_code", code, "actor", events.ActorFrom(ctx).Subject)
	return &registryv1.RegisterInstitutionResponse{Institution: toProtoInstitution(in)}, nil
}

// validateRegister checks a registration and returns the normalised code
// and cleaned details, or an InvalidError naming every bad field.
func validateRegister(req *registryv1.RegisterInstitutionRequest) (string, Details, error) {
	var v errs.Violations
	code, err := ValidateCreditCode(req.GetCreditCode())
	var cce *CreditCodeError
	if errors.As(err, &cce) {
		v.Add("credit_code", "%q: %s", errs.Shorten(req.GetCreditCode(), 40), cce.Problem)
	}
	d := fromProtoDetails("", req.GetNameZh(), req.GetNameEn(), req.GetKind(), req.GetTier(), req.GetZone(),
		req.GetAddress(), req.GetContact(), req.GetLicences(), &v).Clean()
	d.Validate("", &v)
	return code, d, v.Err()
}

// GetInstitution reads one institution with its review history.
func (s *Server) GetInstitution(ctx context.Context, req *registryv1.GetInstitutionRequest) (*registryv1.GetInstitutionResponse, error) {
	if req.GetId() == "" {
		return nil, errs.Invalid("id", "is required")
	}
	in, err := s.get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !visible(ctx, in) {
		return nil, errs.NotFound("institution", req.GetId())
	}
	return &registryv1.GetInstitutionResponse{Institution: toProtoInstitution(in)}, nil
}

// listFilter is what ListInstitutions selects on.
type listFilter struct {
	kind Kind
	tier Tier
	zone Zone
	st   State
	name string // folded for comparison; "" matches all
}

// fingerprint binds a page token to the filters it was issued for.
func (f listFilter) fingerprint() string {
	return paging.Fingerprint(fmt.Appendf(nil, "%s|%s|%s|%s|%s", f.kind, f.tier, f.zone, f.st, f.name))
}

// term picks the index to scan: the one likely to hold the fewest records.
// The store keeps no counts, so this goes by what the register looks like:
// most institutions are ACTIVE, so any other state is the rarest filter; a
// kind splits the register eleven ways, a zone five, a tier three; ACTIVE
// selects nearly everything. The filters not scanned are checked by match.
func (f listFilter) term() string {
	switch {
	case !f.st.IsZero() && f.st != StateActive:
		return termState + f.st.String()
	case !f.kind.IsZero():
		return termKind + f.kind.String()
	case !f.zone.IsZero():
		return termZone + f.zone.String()
	case !f.tier.IsZero():
		return termTier + f.tier.String()
	case !f.st.IsZero():
		return termState + f.st.String()
	}
	return ""
}

// matches checks every filter; the scanned index term passes trivially.
func (f listFilter) matches(in *Institution) bool {
	return (f.kind.IsZero() || in.Kind == f.kind) &&
		(f.tier.IsZero() || in.Tier == f.tier) &&
		(f.zone.IsZero() || in.Zone == f.zone) &&
		(f.st.IsZero() || in.State == f.st) &&
		(f.name == "" || strings.Contains(foldName(in.NameZh), f.name) || strings.Contains(foldName(in.NameEn), f.name))
}

// foldName is the form names are compared in: full-width Latin letters and
// digits as ASCII, lower case.
func foldName(s string) string {
	return strings.ToLower(width.Fold.String(s))
}

// ListInstitutions lists institutions in registration order (ids are
// ULIDs), filtered and paged.
func (s *Server) ListInstitutions(ctx context.Context, req *registryv1.ListInstitutionsRequest) (*registryv1.ListInstitutionsResponse, error) {
	var v errs.Violations
	size := paging.Size(&v, req.GetPageSize())
	var f listFilter
	var ok bool
	if f.kind, ok = kindFromProto(req.GetKind()); !ok {
		v.Add("kind", "unknown value %d", req.GetKind())
	}
	if f.tier, ok = tierFromProto(req.GetTier()); !ok {
		v.Add("tier", "unknown value %d", req.GetTier())
	}
	if f.zone, ok = zoneFromProto(req.GetZone()); !ok {
		v.Add("zone", "unknown value %d", req.GetZone())
	}
	if f.st, ok = stateFromProto(req.GetState()); !ok {
		v.Add("state", "unknown value %d", req.GetState())
	}
	name := strings.TrimSpace(req.GetNameContains())
	if n := utf8.RuneCountInString(name); n > maxNameContains {
		v.Add("name_contains", "is %d characters long; at most %d", n, maxNameContains)
	}
	f.name = foldName(name)
	after := paging.Check{Refilter: "repeat the first call's kind, tier, zone, state and name_contains"}.After(&v, req.GetPageToken(), f.fingerprint())
	if err := v.Err(); err != nil {
		return nil, err
	}

	// The store is asked for records that match; a record that does not
	// decode matches too, so its error surfaces below.
	match := func(rec store.Record) bool {
		in, err := decodeInstitution(rec)
		return err != nil || (f.matches(in) && visible(ctx, in))
	}
	q := store.Query{Index: f.term(), After: after, Match: match}
	recs, next, err := paging.List(ctx, s.st, kindInstitution, q, size, f.fingerprint())
	if err != nil {
		return nil, fmt.Errorf("registry: list institutions: %w", err)
	}
	got := make([]*Institution, 0, len(recs))
	for _, rec := range recs {
		in, err := decodeInstitution(rec)
		if err != nil {
			return nil, err
		}
		got = append(got, in)
	}
	resp := &registryv1.ListInstitutionsResponse{NextPageToken: next}
	resp.Institutions = make([]*registryv1.Institution, len(got))
	for i, in := range got {
		resp.Institutions[i] = toProtoInstitution(in)
	}
	return resp, nil
}

// updatablePaths are the update_mask paths UpdateInstitution applies.
var updatablePaths = []string{"name_zh", "name_en", "kind", "tier", "zone", "address", "contact", "contact.name", "contact.phone", "contact.email", "licences"}

// fixedPaths are fields of Institution an update may not name, with why.
var fixedPaths = map[string]string{
	"id":          "is assigned at registration",
	"credit_code": "is the institution's identity; register the institution anew",
	"state":       "changes only through ApproveInstitution, RejectInstitution, SuspendInstitution and ReinstateInstitution",
	"version":     "is the store's; give the version you read in the request's version field",
	"create_time": "is set by the service",
	"update_time": "is set by the service",
	"reviews":     "are recorded by the review methods",
}

// visible reports whether the caller may see an institution: staff see all,
// others their own record and the ACTIVE directory.
func visible(ctx context.Context, in *Institution) bool {
	return in.State == StateActive || auth.Owns(ctx, in.CreditCode)
}

// UpdateInstitution changes an institution's descriptive fields, expecting
// the version the caller read.
func (s *Server) UpdateInstitution(ctx context.Context, req *registryv1.UpdateInstitutionRequest) (*registryv1.UpdateInstitutionResponse, error) {
	var v errs.Violations
	if req.GetId() == "" {
		v.Add("id", "is required")
	}
	if req.GetVersion() <= 0 {
		v.Add("version", "%d: give the version you read (GetInstitution's institution.version)", req.GetVersion())
	}
	msg := req.GetInstitution()
	if msg == nil {
		v.Add("institution", "is required: the new values of the fields to change")
		return nil, v.Err()
	}
	if msg.GetId() != "" && msg.GetId() != req.GetId() {
		v.Add("institution.id", "%q differs from id %q; leave it empty or the same", msg.GetId(), req.GetId())
	}
	var paths []string
	if mask := req.GetUpdateMask(); mask != nil && len(mask.GetPaths()) > 0 {
		for _, p := range mask.GetPaths() {
			switch {
			case p == "*":
				paths = append(paths, "name_zh", "name_en", "kind", "tier", "zone", "address", "contact", "licences")
			case fixedPaths[p] != "":
				v.Add("update_mask", "path %q cannot be changed here: %s", p, fixedPaths[p])
			case !slices.Contains(updatablePaths, p):
				v.Add("update_mask", "unknown path %q; updatable paths are %s", p, strings.Join(updatablePaths, ", "))
			default:
				paths = append(paths, p)
			}
		}
	} else {
		paths = impliedPaths(msg)
		if len(paths) == 0 {
			v.Add("institution", "sets no field to change; set one of %s, or name fields to clear in update_mask", strings.Join(updatablePaths, ", "))
		}
	}
	patch := fromProtoDetails("institution.", msg.GetNameZh(), msg.GetNameEn(), msg.GetKind(), msg.GetTier(), msg.GetZone(),
		msg.GetAddress(), msg.GetContact(), msg.GetLicences(), &v)
	if err := v.Err(); err != nil {
		return nil, err
	}

	// update answers NotFound for another organisation's institution.
	in, err := s.update(ctx, req.GetId(), req.GetVersion(), func(in *Institution, _ time.Time) (string, error) {
		d := applyPaths(in.Details, patch, paths).Clean()
		if !auth.IsStaff(ctx) {
			// Sending back the values read is fine; changing them is not.
			for _, f := range []struct {
				name    string
				changed bool
			}{{"kind", d.Kind != in.Kind}, {"tier", d.Tier != in.Tier}, {"zone", d.Zone != in.Zone}} {
				if f.changed {
					return "", errs.PermissionDenied("only district staff change %s: it was checked when the institution was approved", f.name)
				}
			}
		}
		var v errs.Violations
		d.Validate("institution.", &v)
		if err := v.Err(); err != nil {
			return "", err
		}
		if d.Equal(in.Details) {
			return "", errNoChange
		}
		in.Details = d
		return SubjectUpdated, nil
	})
	if err != nil {
		return nil, err
	}
	return &registryv1.UpdateInstitutionResponse{Institution: toProtoInstitution(in)}, nil
}

// impliedPaths is the AIP-134 implied mask: every updatable field given a
// non-empty value. Output-only fields are ignored, so a client may send back
// what it read.
func impliedPaths(m *registryv1.Institution) []string {
	var p []string
	add := func(set bool, path string) {
		if set {
			p = append(p, path)
		}
	}
	add(m.GetNameZh() != "", "name_zh")
	add(m.GetNameEn() != "", "name_en")
	add(m.GetKind() != 0, "kind")
	add(m.GetTier() != 0, "tier")
	add(m.GetZone() != 0, "zone")
	add(m.GetAddress() != "", "address")
	add(m.GetContact().GetName() != "", "contact.name")
	add(m.GetContact().GetPhone() != "", "contact.phone")
	add(m.GetContact().GetEmail() != "", "contact.email")
	add(len(m.GetLicences()) > 0, "licences")
	return p
}

// applyPaths copies the named fields of patch onto d.
func applyPaths(d, patch Details, paths []string) Details {
	for _, p := range paths {
		switch p {
		case "name_zh":
			d.NameZh = patch.NameZh
		case "name_en":
			d.NameEn = patch.NameEn
		case "kind":
			d.Kind = patch.Kind
		case "tier":
			d.Tier = patch.Tier
		case "zone":
			d.Zone = patch.Zone
		case "address":
			d.Address = patch.Address
		case "contact":
			d.Contact = patch.Contact
		case "contact.name":
			d.Contact.Name = patch.Contact.Name
		case "contact.phone":
			d.Contact.Phone = patch.Contact.Phone
		case "contact.email":
			d.Contact.Email = patch.Contact.Email
		case "licences":
			d.Licences = patch.Licences
		}
	}
	return d
}

// ApproveInstitution moves a PENDING institution to ACTIVE.
func (s *Server) ApproveInstitution(ctx context.Context, req *registryv1.ApproveInstitutionRequest) (*registryv1.ApproveInstitutionResponse, error) {
	in, err := s.review(ctx, ActionApprove, req.GetId(), req.GetReason(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &registryv1.ApproveInstitutionResponse{Institution: in}, nil
}

// RejectInstitution moves a PENDING institution to REJECTED.
func (s *Server) RejectInstitution(ctx context.Context, req *registryv1.RejectInstitutionRequest) (*registryv1.RejectInstitutionResponse, error) {
	in, err := s.review(ctx, ActionReject, req.GetId(), req.GetReason(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &registryv1.RejectInstitutionResponse{Institution: in}, nil
}

// SuspendInstitution moves an ACTIVE institution to SUSPENDED.
func (s *Server) SuspendInstitution(ctx context.Context, req *registryv1.SuspendInstitutionRequest) (*registryv1.SuspendInstitutionResponse, error) {
	in, err := s.review(ctx, ActionSuspend, req.GetId(), req.GetReason(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &registryv1.SuspendInstitutionResponse{Institution: in}, nil
}

// ReinstateInstitution moves a SUSPENDED institution back to ACTIVE.
func (s *Server) ReinstateInstitution(ctx context.Context, req *registryv1.ReinstateInstitutionRequest) (*registryv1.ReinstateInstitutionResponse, error) {
	in, err := s.review(ctx, ActionReinstate, req.GetId(), req.GetReason(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &registryv1.ReinstateInstitutionResponse{Institution: in}, nil
}

// review is the four review RPCs: validate, then apply the action under
// the version the reviewer read, if they gave one.
func (s *Server) review(ctx context.Context, a Action, id, reason string, version int64) (*registryv1.Institution, error) {
	var v errs.Violations
	if id == "" {
		v.Add("id", "is required")
	}
	var inv *errs.InvalidError
	if err := checkReason(reason); errors.As(err, &inv) {
		v = append(v, inv.Violations...)
	}
	if version < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0 to skip the check", version)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	actor := events.ActorFrom(ctx)
	in, err := s.update(ctx, id, version, func(in *Institution, now time.Time) (string, error) {
		if err := in.Review(a, reason, actor.Subject, actor.OrganizationID, now); err != nil {
			return "", err
		}
		return reviewSubjects[a], nil
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "registry: institution "+pastTense[a], "id", in.ID, "state", in.State.String(), "actor", actor.Subject)
	return toProtoInstitution(in), nil
}

// GetRegistryStats counts institutions by kind, tier, zone and state. It
// reads the whole register: a district has hundreds of institutions, not
// millions, and counts kept beside the records would be one more thing to
// keep consistent.
func (s *Server) GetRegistryStats(ctx context.Context, _ *registryv1.GetRegistryStatsRequest) (*registryv1.GetRegistryStatsResponse, error) {
	byKind := map[Kind]int64{}
	byTier := map[Tier]int64{}
	byZone := map[Zone]int64{}
	byState := map[State]int64{}
	resp := &registryv1.GetRegistryStatsResponse{}
	err := s.scan(ctx, "", nil, func(in *Institution) error {
		resp.Total++
		byKind[in.Kind]++
		byTier[in.Tier]++
		byZone[in.Zone]++
		byState[in.State]++
		if in.State == StateActive {
			resp.Active++
			if in.Zone == ZoneFinanceAxis {
				resp.ActiveOnFinanceAxis++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.ByKind = counts(Kinds(), byKind)
	resp.ByTier = counts(Tiers(), byTier)
	resp.ByZone = counts(Zones(), byZone)
	resp.ByState = counts(States(), byState)
	resp.FinanceAxisShareBps = shareBps(resp.ActiveOnFinanceAxis, resp.Active)
	return resp, nil
}

// counts lists every value of a dimension in proto order, zeros included,
// so a dashboard's rows do not come and go.
func counts[T interface {
	comparable
	fmt.Stringer
}](all []T, n map[T]int64) []*registryv1.Count {
	out := make([]*registryv1.Count, len(all))
	for i, k := range all {
		out[i] = &registryv1.Count{Key: k.String(), Count: n[k]}
	}
	return out
}

// shareBps is part/whole in basis points, rounded half up; 0 for no whole.
func shareBps(part, whole int64) int32 {
	if whole <= 0 {
		return 0
	}
	return int32((part*10000 + whole/2) / whole)
}

// Converters.

func toProtoInstitution(in *Institution) *registryv1.Institution {
	msg := &registryv1.Institution{
		Id:         in.ID,
		CreditCode: in.CreditCode,
		NameZh:     in.NameZh,
		NameEn:     in.NameEn,
		Kind:       in.Kind.proto(),
		Tier:       in.Tier.proto(),
		Zone:       in.Zone.proto(),
		Address:    in.Address,
		Contact:    &registryv1.Contact{Name: in.Contact.Name, Phone: in.Contact.Phone, Email: in.Contact.Email},
		State:      in.State.proto(),
		Version:    in.Version,
		CreateTime: timestamppb.New(in.Created.UTC()),
		UpdateTime: timestamppb.New(in.Updated.UTC()),
	}
	for _, l := range in.Licences {
		msg.Licences = append(msg.Licences, &registryv1.Licence{Name: l.Name, Number: l.Number, Issuer: l.Issuer})
	}
	for _, r := range in.Reviews {
		msg.Reviews = append(msg.Reviews, &registryv1.ReviewRecord{
			Action:    r.Action.proto(),
			FromState: r.From.proto(),
			ToState:   r.To.proto(),
			Reason:    r.Reason,
			Actor:     r.Actor,
			Time:      timestamppb.New(r.Time.UTC()),
		})
	}
	return msg
}

// fromProtoInstitution reads a stored institution. Unlike a request, stored
// data is ours: an enum number we do not know means the data is corrupt or
// written by a newer version, and is an error rather than a violation.
func fromProtoInstitution(msg *registryv1.Institution) (*Institution, error) {
	var v errs.Violations
	d := fromProtoDetails("", msg.GetNameZh(), msg.GetNameEn(), msg.GetKind(), msg.GetTier(), msg.GetZone(),
		msg.GetAddress(), msg.GetContact(), msg.GetLicences(), &v)
	st, ok := stateFromProto(msg.GetState())
	if !ok {
		v.Add("state", "unknown value %d", msg.GetState())
	}
	in := &Institution{
		ID:         msg.GetId(),
		CreditCode: msg.GetCreditCode(),
		Details:    d,
		State:      st,
		Version:    msg.GetVersion(),
		Created:    msg.GetCreateTime().AsTime(),
		Updated:    msg.GetUpdateTime().AsTime(),
	}
	for i, r := range msg.GetReviews() {
		a, okA := actionFromProto(r.GetAction())
		from, okF := stateFromProto(r.GetFromState())
		to, okT := stateFromProto(r.GetToState())
		if !okA || !okF || !okT {
			v.Add(fmt.Sprintf("reviews[%d]", i), "unknown action or state %d/%d/%d", r.GetAction(), r.GetFromState(), r.GetToState())
		}
		in.Reviews = append(in.Reviews, Review{Action: a, From: from, To: to, Reason: r.GetReason(), Actor: r.GetActor(), Time: r.GetTime().AsTime()})
	}
	if err := v.Err(); err != nil {
		// Not wrapped: bad stored data is an internal error, not the
		// caller's invalid argument.
		return nil, fmt.Errorf("stored institution does not decode: %s", err)
	}
	return in, nil
}

// fromProtoDetails reads the descriptive fields of a request, recording
// enum numbers the proto does not define as violations under prefix.
func fromProtoDetails(prefix, nameZh, nameEn string, kind registryv1.InstitutionKind, tier registryv1.Tier, zone registryv1.Zone,
	address string, c *registryv1.Contact, ls []*registryv1.Licence, v *errs.Violations,
) Details {
	d := Details{
		NameZh:  nameZh,
		NameEn:  nameEn,
		Address: address,
		Contact: Contact{Name: c.GetName(), Phone: c.GetPhone(), Email: c.GetEmail()},
	}
	var ok bool
	if d.Kind, ok = kindFromProto(kind); !ok {
		v.Add(prefix+"kind", "unknown value %d; one of %s", kind, strings.Join(protoenum.Strings(Kinds()), ", "))
	}
	if d.Tier, ok = tierFromProto(tier); !ok {
		v.Add(prefix+"tier", "unknown value %d; one of %s", tier, strings.Join(protoenum.Strings(Tiers()), ", "))
	}
	if d.Zone, ok = zoneFromProto(zone); !ok {
		v.Add(prefix+"zone", "unknown value %d; one of %s", zone, strings.Join(protoenum.Strings(Zones()), ", "))
	}
	for _, l := range ls {
		d.Licences = append(d.Licences, Licence{Name: l.GetName(), Number: l.GetNumber(), Issuer: l.GetIssuer()})
	}
	return d
}
