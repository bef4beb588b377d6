package talent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

// Talent profiles are personal information: a profile is seen and changed
// by its organisation (organization_credit_code) and by district staff,
// and by nobody else; a profile staff keep without an organisation is
// staff's alone. Its total_hours is the sum of its hours ledger, kept by
// attendance (rules.go), never by an update.

// ownsTalent: the caller's organisation keeps the profile, or the caller
// is staff.
func ownsTalent(ctx context.Context, p *talentv1.Talent) bool {
	return auth.Owns(ctx, p.GetOrganizationCreditCode())
}

// CreateTalent adds a person to the talent base.
func (s *Server) CreateTalent(ctx context.Context, req *talentv1.CreateTalentRequest) (*talentv1.CreateTalentResponse, error) {
	if req.GetTalent() == nil {
		return nil, errs.Invalid("talent", "is required")
	}
	p := cleanTalent(req.GetTalent())
	c, isCaller := auth.CallerFrom(ctx)
	if isCaller && !auth.IsStaff(ctx) && p.GetOrganizationCreditCode() == "" {
		p.OrganizationCreditCode = c.Org // the caller's own organisation
	}
	now := s.now().UTC()
	var v errs.Violations
	validateTalent(&v, "talent.", p, now)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if !ownsTalent(ctx, p) {
		return nil, errs.PermissionDenied("an organisation keeps profiles of its own people only: organization_credit_code %s is not your organisation", p.GetOrganizationCreditCode())
	}
	if err := s.createTalent(ctx, p, now); err != nil {
		return nil, err
	}
	return &talentv1.CreateTalentResponse{Talent: p}, nil
}

// createTalent stores a validated profile (with a fresh id unless it has
// one) with its event, and extra puts in the same batch.
func (s *Server) createTalent(ctx context.Context, p *talentv1.Talent, now time.Time, extra ...store.Put) error {
	if p.Id == "" {
		p.Id = events.NewID(now)
	}
	p.Version = 1
	p.CreateTime = timestamppb.New(now)
	p.UpdateTime = p.CreateTime
	data, err := proto.Marshal(p)
	if err != nil {
		return fmt.Errorf("talent: marshal talent: %w", err)
	}
	ev, err := event(events.ActorFrom(ctx), SubjectTalentCreated, p.GetId(), 1, p, now)
	if err != nil {
		return err
	}
	put := store.Put{Kind: kindTalent, ID: p.GetId(), Expect: store.MustNotExist, Data: data, Index: talentTerms(p)}
	if _, err := s.st.Apply(ctx, store.Batch{Puts: append([]store.Put{put}, extra...), Events: []store.Event{ev}}); err != nil {
		p.Version = 0
		return fmt.Errorf("talent: create talent: %w", err)
	}
	return nil
}

// GetTalent reads one profile.
func (s *Server) GetTalent(ctx context.Context, req *talentv1.GetTalentRequest) (*talentv1.GetTalentResponse, error) {
	p, err := s.visibleTalent(ctx, "id", req.GetId())
	if err != nil {
		return nil, err
	}
	return &talentv1.GetTalentResponse{Talent: p}, nil
}

// visibleTalent reads a profile the caller may see; anyone else's answers
// NotFound.
func (s *Server) visibleTalent(ctx context.Context, field, id string) (*talentv1.Talent, error) {
	var v errs.Violations
	checkID(&v, field, id, true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.getTalent(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ownsTalent(ctx, p) {
		return nil, errs.NotFound("talent", id)
	}
	return p, nil
}

// ListTalents lists profiles in creation order, filtered and paged.
func (s *Server) ListTalents(ctx context.Context, req *talentv1.ListTalentsRequest) (*talentv1.ListTalentsResponse, error) {
	var v errs.Violations
	size := paging.Size(&v, req.GetPageSize())
	skill := skillKey(req.GetSkill())
	cert := req.GetCertification()
	code := registry.NormalizeCreditCode(req.GetOrganizationCreditCode())
	orgText := strings.TrimSpace(req.GetOrganizationContains())
	nameText := strings.TrimSpace(req.GetNameContains())
	if n := utf8.RuneCountInString(skill); n > maxSkill {
		v.Add("skill", "is %d characters long; at most %d", n, maxSkill)
	}
	if protoenum.Known(cert) != cert {
		v.Add("certification", "unknown value %d", cert)
	}
	checkID(&v, "organization_credit_code", code, false)
	for field, text := range map[string]string{"organization_contains": orgText, "name_contains": nameText} {
		if n := utf8.RuneCountInString(text); n > maxContains {
			v.Add(field, "is %d characters long; at most %d", n, maxContains)
		}
	}
	orgFold, nameFold := foldText(orgText), foldText(nameText)
	fp := paging.Fingerprint(fmt.Appendf(nil, "%s|%d|%s|%s|%s", skill, cert, code, orgFold, nameFold))
	after := paging.Check{Refilter: "repeat the first call's filters"}.After(&v, req.GetPageToken(), fp)
	if err := v.Err(); err != nil {
		return nil, err
	}

	c, _ := auth.CallerFrom(ctx)
	var term string
	switch {
	case !auth.IsStaff(ctx):
		if c.Org == "" || (code != "" && code != c.Org) {
			return &talentv1.ListTalentsResponse{}, nil
		}
		term = termOrg + c.Org
	case code != "":
		term = termOrg + code
	case skill != "":
		term = termSkill + skill
	case cert != 0:
		term = termCert + key(cert)
	}
	match := func(rec store.Record) bool {
		p, err := decodeTalent(rec)
		if err != nil {
			return true // surfaces as an error below
		}
		return ownsTalent(ctx, p) &&
			(code == "" || p.GetOrganizationCreditCode() == code) &&
			(skill == "" || slices.ContainsFunc(p.GetSkills(), func(s string) bool { return skillKey(s) == skill })) &&
			(cert == 0 || slices.ContainsFunc(p.GetCertifications(), func(c *talentv1.Certification) bool { return c.GetJobType() == cert })) &&
			(orgFold == "" || strings.Contains(foldText(p.GetOrganization()), orgFold)) &&
			(nameFold == "" || strings.Contains(foldText(p.GetName()), nameFold))
	}
	recs, next, err := paging.List(ctx, s.st, kindTalent, store.Query{Index: term, After: after, Match: match}, size, fp)
	if err != nil {
		return nil, fmt.Errorf("talent: list talents: %w", err)
	}
	resp := &talentv1.ListTalentsResponse{NextPageToken: next, Talents: make([]*talentv1.Talent, 0, len(recs))}
	for _, rec := range recs {
		p, err := decodeTalent(rec)
		if err != nil {
			return nil, err
		}
		resp.Talents = append(resp.Talents, p)
	}
	return resp, nil
}

// talentPaths are the update_mask paths UpdateTalent applies.
var talentPaths = []string{"name", "organization", "organization_credit_code", "role", "phone", "email", "skills", "certifications"}

var fixedTalentPaths = map[string]string{
	"id":          "is assigned at creation",
	"total_hours": "is the sum of the hours ledger, kept by attendance",
	"version":     "is the store's; give the version you read in the request's version field",
	"create_time": "is set by the service",
	"update_time": "is set by the service",
}

func impliedTalentPaths(m *talentv1.Talent) []string {
	var p []string
	add := func(set bool, path string) {
		if set {
			p = append(p, path)
		}
	}
	add(m.GetName() != "", "name")
	add(m.GetOrganization() != "", "organization")
	add(m.GetOrganizationCreditCode() != "", "organization_credit_code")
	add(m.GetRole() != "", "role")
	add(m.GetPhone() != "", "phone")
	add(m.GetEmail() != "", "email")
	add(len(m.GetSkills()) > 0, "skills")
	add(len(m.GetCertifications()) > 0, "certifications")
	return p
}

func applyTalentPaths(p, patch *talentv1.Talent, paths []string) {
	for _, path := range paths {
		switch path {
		case "name":
			p.Name = patch.GetName()
		case "organization":
			p.Organization = patch.GetOrganization()
		case "organization_credit_code":
			p.OrganizationCreditCode = patch.GetOrganizationCreditCode()
		case "role":
			p.Role = patch.GetRole()
		case "phone":
			p.Phone = patch.GetPhone()
		case "email":
			p.Email = patch.GetEmail()
		case "skills":
			p.Skills = patch.GetSkills()
		case "certifications":
			p.Certifications = patch.GetCertifications()
		}
	}
}

// UpdateTalent changes a profile, expecting the version read. Only staff
// move a profile to another organisation.
func (s *Server) UpdateTalent(ctx context.Context, req *talentv1.UpdateTalentRequest) (*talentv1.UpdateTalentResponse, error) {
	var v errs.Violations
	checkID(&v, "id", req.GetId(), true)
	if req.GetVersion() <= 0 {
		v.Add("version", "%d: give the version you read (GetTalent's talent.version)", req.GetVersion())
	}
	msg := req.GetTalent()
	if msg == nil {
		v.Add("talent", "is required: the new values of the fields to change")
		return nil, v.Err()
	}
	if msg.GetId() != "" && msg.GetId() != req.GetId() {
		v.Add("talent.id", "%q differs from id %q; leave it empty or the same", errs.Shorten(msg.GetId(), 40), errs.Shorten(req.GetId(), 40))
	}
	var paths []string
	if mask := req.GetUpdateMask(); len(mask.GetPaths()) > 0 {
		paths = maskPaths(&v, mask.GetPaths(), talentPaths, fixedTalentPaths)
	} else if paths = impliedTalentPaths(msg); len(paths) == 0 {
		v.Add("talent", "sets no field to change; set one of %s, or name fields to clear in update_mask", strings.Join(talentPaths, ", "))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	patch := cleanTalent(msg)
	for attempt := 1; ; attempt++ {
		p, err := s.getTalent(ctx, req.GetId())
		if err != nil {
			return nil, err
		}
		if !ownsTalent(ctx, p) {
			return nil, errs.NotFound("talent", req.GetId())
		}
		if err := checkVersion("talent", p.GetId(), req.GetVersion(), p.GetVersion()); err != nil {
			return nil, err
		}
		next := proto.CloneOf(p)
		applyTalentPaths(next, patch, paths)
		next = cleanTalent(next)
		now := s.now().UTC()
		var v errs.Violations
		validateTalent(&v, "talent.", next, now)
		if err := v.Err(); err != nil {
			return nil, err
		}
		if next.GetOrganizationCreditCode() != p.GetOrganizationCreditCode() && !auth.IsStaff(ctx) {
			return nil, errs.PermissionDenied("only district staff move a profile to another organisation")
		}
		if sameTalentFields(next, p) {
			return &talentv1.UpdateTalentResponse{Talent: p}, nil
		}
		next.Id, next.TotalHours, next.CreateTime = p.GetId(), p.GetTotalHours(), p.GetCreateTime()
		next.Version = p.GetVersion() + 1
		next.UpdateTime = timestamppb.New(now)
		data, err := proto.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("talent: marshal talent: %w", err)
		}
		ev, err := event(events.ActorFrom(ctx), SubjectTalentUpdated, next.GetId(), next.GetVersion(), next, now)
		if err != nil {
			return nil, err
		}
		_, err = s.st.Apply(ctx, store.Batch{
			Puts:   []store.Put{{Kind: kindTalent, ID: next.GetId(), Expect: p.GetVersion(), Data: data, Index: talentTerms(next)}},
			Events: []store.Event{ev},
		})
		switch {
		case err == nil:
			return &talentv1.UpdateTalentResponse{Talent: next}, nil
		case errors.Is(err, store.ErrConflict) && attempt < 3:
			continue // re-read: the version check above decides
		case errors.Is(err, store.ErrConflict):
			return nil, errs.New(ErrStaleVersion, "talent %s kept changing while this change was made; read it again", p.GetId())
		default:
			return nil, fmt.Errorf("talent: update talent %s: %w", p.GetId(), err)
		}
	}
}

// GetHoursLedger reads a profile's ledger, in order of registration.
func (s *Server) GetHoursLedger(ctx context.Context, req *talentv1.GetHoursLedgerRequest) (*talentv1.GetHoursLedgerResponse, error) {
	var v errs.Violations
	size := paging.Size(&v, req.GetPageSize())
	fp := paging.Fingerprint([]byte(req.GetTalentId()))
	after := paging.Check{Refilter: "repeat the first call's talent_id"}.After(&v, req.GetPageToken(), fp)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.visibleTalent(ctx, "talent_id", req.GetTalentId())
	if err != nil {
		return nil, err
	}
	recs, next, err := paging.List(ctx, s.st, kindHours, store.Query{Index: termTalent + p.GetId(), After: after}, size, fp)
	if err != nil {
		return nil, fmt.Errorf("talent: hours ledger of %s: %w", p.GetId(), err)
	}
	resp := &talentv1.GetHoursLedgerResponse{TalentId: p.GetId(), TotalHours: p.GetTotalHours(), NextPageToken: next}
	for _, rec := range recs {
		h, err := decodeHours(rec)
		if err != nil {
			return nil, err
		}
		resp.Entries = append(resp.Entries, h)
	}
	return resp, nil
}
