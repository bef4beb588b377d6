package registry

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// The fuzz targets below call the handlers as the gRPC server would, on a
// registry over a bolt store holding one institution in each state, as
// callers of every kind. Whatever arrives, a handler never panics and never
// answers Internal; it refuses with the caller's codes; and no caller sees
// or changes what its rule does not let it.

// fuzzWorld is the registry the iterations of one fuzz target share.
type fuzzWorld struct {
	s *Server
	// byState holds one institution per state (ids), registered at setup.
	byState map[State]string
	targets []string // the ids of byState, in a fixed order
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	c := &clock{now: t0}
	w := &fuzzWorld{s: New(testenv.BoltStore(f), WithClock(c.Now)), byState: map[State]string{}}
	for _, st := range States() {
		id := w.register(f, st)
		w.byState[st] = id
		w.targets = append(w.targets, id)
	}
	return w
}

// register files a fresh institution and reviews it into state, as the desk.
func (w *fuzzWorld) register(tb testing.TB, state State) string {
	tb.Helper()
	ctx := events.WithActor(context.Background(), staff)
	resp, err := w.s.RegisterInstitution(ctx, validRequest(tb))
	if err != nil {
		tb.Fatal(err)
	}
	id := resp.GetInstitution().GetId()
	for _, a := range seedPaths[state] {
		if _, err := w.s.review(ctx, a, id, "fuzz world", 0); err != nil {
			tb.Fatal(err)
		}
	}
	return id
}

// replace puts a fresh institution in state where id was.
func (w *fuzzWorld) replace(tb testing.TB, id string, state State) {
	tb.Helper()
	i := slices.Index(w.targets, id)
	if i < 0 {
		return
	}
	fresh := w.register(tb, state)
	w.targets[i] = fresh
	w.byState[state] = fresh
}

// target picks one of the world's institutions, or, for sel past them,
// the fuzzer's own id.
func (w *fuzzWorld) target(sel uint8, fuzzed string) string {
	if i := int(sel) % (len(w.targets) + 1); i < len(w.targets) {
		return w.targets[i]
	}
	return fuzzed
}

// read returns an institution as the desk itself sees it, or nil.
func (w *fuzzWorld) read(t *testing.T, id string) *Institution {
	if id == "" {
		return nil
	}
	in, err := w.s.get(context.Background(), id)
	if err != nil {
		if code(err) != codes.NotFound && code(err) != codes.InvalidArgument {
			t.Fatalf("read %q: %v", id, err)
		}
		return nil
	}
	return in
}

// fuzzCallers are the kinds of caller a fuzz input chooses from.
var fuzzCallers = []struct {
	role  auth.Role
	owner bool // of the target's organisation (else of another)
}{
	{auth.Staff, false}, {auth.Staff, true},
	{auth.Institution, true}, {auth.Institution, false},
	{auth.Enterprise, true}, {auth.Enterprise, false},
}

// callerCtx is a context carrying the sel-th kind of caller for an object
// of the organisation owner, and whether that caller owns it.
func callerCtx(ctx context.Context, sel uint8, owner string) (context.Context, auth.Caller, bool) {
	k := fuzzCallers[int(sel)%len(fuzzCallers)]
	c := auth.Caller{Subject: "fuzz-" + string(k.role), Role: k.role, Org: "91420106MA4K00010G"}
	if k.owner && owner != "" {
		c.Org = owner
	}
	return auth.WithCaller(ctx, c), c, k.role == auth.Staff || c.Org == owner
}

// wantCodes fails unless err maps to one of the codes.
func wantCodes(t *testing.T, err error, ok ...codes.Code) codes.Code {
	t.Helper()
	got := code(err)
	if !slices.Contains(ok, got) {
		t.Fatalf("answered %s (%v); want one of %v", got, err, ok)
	}
	return got
}

// FuzzUpdateInstitution: arbitrary updates (ids, versions, masks, values,
// enum numbers) by every kind of caller. Refusals are InvalidArgument,
// NotFound, Aborted or PermissionDenied; another organisation's
// institution is NotFound (never Aborted: the version check must not tell
// it exists) and never changes; credit code, state and reviews never
// change; what is stored validates; only staff move kind, tier and zone.
func FuzzUpdateInstitution(f *testing.F) {
	w := newFuzzWorld(f)
	f.Add(uint8(0), "", int64(0), "name_en", "", "Renamed Bank", "", "", "", "", "", int32(0), int32(0), uint8(0))
	f.Add(uint8(1), "", int64(1), "", "新名称银行", "", "武昌区 1 号", "李工", "027-1234 5678", "a@b.cn", "金融许可证", int32(0), int32(0), uint8(2))
	f.Add(uint8(2), "", int64(7), "kind,zone", "", "", "", "", "", "", "", int32(3), int32(0), uint8(3))
	f.Add(uint8(3), "", int64(0), "state,credit_code,version", "", "", "", "", "", "", "", int32(2), int32(2), uint8(2))
	f.Add(uint8(0), "", int64(0), "*", "碳", "", "", "", "", "", "", int32(1), int32(0), uint8(1))
	f.Add(uint8(4), "", int64(0), "contact.email,licences", "", "", "", "", "", "not-an-email", "", int32(99), int32(0), uint8(4))
	f.Add(uint8(5), "01JNOSUCHID", int64(-1), "", "", "", "", "", "", "", "", int32(-5), int32(0), uint8(5))
	f.Add(uint8(5), "", int64(1<<62), ",,", "\x00", "\u202e", "\xff", " ", "+", "@", "", int32(0), int32(7), uint8(0))
	f.Fuzz(func(t *testing.T, sel uint8, fuzzedID string, version int64, mask, zh, en, addr, person, phone, email, licence string,
		enum, fixed int32, callerSel uint8) {
		id := w.target(sel, fuzzedID)
		before := w.read(t, id)
		owner := ""
		if before != nil {
			owner = before.CreditCode
			if version == 0 {
				version = before.Version // reach the success path
			}
		}
		ctx, caller, owns := callerCtx(t.Context(), callerSel, owner)
		req := &registryv1.UpdateInstitutionRequest{
			Id: id, Version: version,
			Institution: &registryv1.Institution{
				NameZh: zh, NameEn: en, Address: addr,
				Kind: registryv1.InstitutionKind(enum), Tier: registryv1.Tier(enum), Zone: registryv1.Zone(enum),
				Contact: &registryv1.Contact{Name: person, Phone: phone, Email: email},
				// Fields no update may set, sent anyway.
				State: registryv1.InstitutionState(fixed), CreditCode: zh, Version: int64(fixed),
				Reviews: []*registryv1.ReviewRecord{{Action: registryv1.ReviewAction(fixed), Reason: en}},
			},
		}
		if licence != "" {
			req.Institution.Licences = []*registryv1.Licence{{Name: licence, Number: addr}}
		}
		if mask != "" {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: strings.Split(mask, ",")}
		}
		resp, err := w.s.UpdateInstitution(ctx, testenv.Wire(t, req))
		got := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.Aborted, codes.PermissionDenied)
		if before != nil && !owns && (got == codes.OK || got == codes.Aborted) {
			t.Fatalf("%s of another organisation: update answered %s; want NotFound", caller.Role, got)
		}

		after := w.read(t, id)
		if before == nil {
			if got == codes.OK {
				t.Fatalf("update of missing %q succeeded", id)
			}
			return
		}
		if after.CreditCode != before.CreditCode || after.State != before.State || len(after.Reviews) != len(before.Reviews) {
			t.Fatalf("update changed a fixed field: %+v → %+v", before, after)
		}
		if got != codes.OK {
			if after.Version != before.Version {
				t.Fatalf("refused update (%v) moved the version %d → %d", err, before.Version, after.Version)
			}
			return
		}
		if after.Version != before.Version && after.Version != before.Version+1 {
			t.Fatalf("update moved the version %d → %d", before.Version, after.Version)
		}
		if resp.GetInstitution().GetVersion() != after.Version {
			t.Fatalf("response version %d, stored %d", resp.GetInstitution().GetVersion(), after.Version)
		}
		var v errs.Violations
		after.Details.Validate("", &v)
		if !after.Details.Clean().Equal(after.Details) || v.Err() != nil {
			t.Fatalf("stored details are not clean and valid: %+v: %v", after.Details, v.Err())
		}
		if caller.Role != auth.Staff && (after.Kind != before.Kind || after.Tier != before.Tier || after.Zone != before.Zone) {
			t.Fatalf("%s changed kind, tier or zone", caller.Role)
		}
	})
}

// FuzzListInstitutions: arbitrary page sizes, page tokens, filters and
// name_contains by every kind of caller. Refusals are InvalidArgument; a
// page holds at most the size asked (200 at most), only institutions that
// match every filter and that the caller may see; its token leads on.
func FuzzListInstitutions(f *testing.F) {
	w := newFuzzWorld(f)
	valid := paging.Token{After: w.targets[0], Filter: listFilter{}.fingerprint()}.Encode()
	f.Add(int32(0), "", int32(0), int32(0), int32(0), int32(0), "", uint8(0))
	f.Add(int32(1), "", int32(0), int32(0), int32(0), int32(2), "", uint8(3))
	f.Add(int32(100000), valid, int32(0), int32(0), int32(0), int32(0), "", uint8(2))
	f.Add(int32(2), valid, int32(1), int32(0), int32(0), int32(0), "", uint8(4))
	f.Add(int32(-1), "not a token", int32(99), int32(-3), int32(6), int32(9), strings.Repeat("碳", 101), uint8(5))
	f.Add(int32(5), "eyJhIjoiIiwiZiI6IiJ9", int32(0), int32(0), int32(0), int32(1), "ＣＨＵＪＩＡＮＧ", uint8(1))
	f.Add(int32(5), "e30", int32(1), int32(3), int32(1), int32(0), "  chujiang  ", uint8(3))
	f.Fuzz(func(t *testing.T, size int32, token string, kind, tier, zone, state int32, name string, callerSel uint8) {
		// The token codec alone: never panics; what decodes re-encodes.
		if tok, ok := paging.Decode(token); ok {
			if again, ok := paging.Decode(tok.Encode()); !ok || again != tok {
				t.Fatalf("token %q decodes to %+v, which does not survive a round trip", token, tok)
			}
		}
		// Non-staff callers see their own record: make the owner the
		// PENDING institution's organisation.
		pending := w.read(t, w.byState[StatePending])
		ctx, caller, _ := callerCtx(t.Context(), callerSel, pending.CreditCode)
		req := &registryv1.ListInstitutionsRequest{
			PageSize: size, PageToken: token, NameContains: name,
			Kind: registryv1.InstitutionKind(kind), Tier: registryv1.Tier(tier), Zone: registryv1.Zone(zone),
			State: registryv1.InstitutionState(state),
		}
		resp, err := w.s.ListInstitutions(ctx, testenv.Wire(t, req))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument) != codes.OK {
			return
		}
		limit := int(size)
		switch {
		case size == 0:
			limit = paging.DefaultSize
		case size > paging.MaxSize:
			limit = paging.MaxSize
		}
		if n := len(resp.GetInstitutions()); n > limit {
			t.Fatalf("page of %d for page_size %d", n, size)
		}
		for _, in := range resp.GetInstitutions() {
			if caller.Role != auth.Staff && in.GetState() != registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE && in.GetCreditCode() != caller.Org {
				t.Fatalf("%s of %s listed %s's %s institution", caller.Role, caller.Org, in.GetCreditCode(), in.GetState())
			}
			if (kind != 0 && in.GetKind() != req.GetKind()) || (tier != 0 && in.GetTier() != req.GetTier()) ||
				(zone != 0 && in.GetZone() != req.GetZone()) || (state != 0 && in.GetState() != req.GetState()) {
				t.Fatalf("listed %v, which does not match %v", in, req)
			}
		}
		if next := resp.GetNextPageToken(); next != "" {
			req.PageToken = next
			more, err := w.s.ListInstitutions(ctx, req)
			if err != nil {
				t.Fatalf("the next page token is refused: %v", err)
			}
			if last, first := resp.GetInstitutions()[len(resp.GetInstitutions())-1].GetId(), more.GetInstitutions(); len(first) > 0 && first[0].GetId() <= last {
				t.Fatalf("the next page starts at %s, not after %s", first[0].GetId(), last)
			}
		}
	})
}

// FuzzGetInstitution: any id by every kind of caller is InvalidArgument,
// NotFound or the institution, and only an institution the caller may see.
func FuzzGetInstitution(f *testing.F) {
	w := newFuzzWorld(f)
	for i := range len(w.targets) + 1 {
		f.Add(uint8(i), "", uint8(i))
	}
	f.Add(uint8(99), "01JNOSUCHID", uint8(3))
	f.Add(uint8(99), "../institution_code/91420106MA4K00010G", uint8(2))
	f.Add(uint8(99), "\x00\xff", uint8(5))
	f.Fuzz(func(t *testing.T, sel uint8, fuzzedID string, callerSel uint8) {
		id := w.target(sel, fuzzedID)
		before := w.read(t, id)
		owner := ""
		if before != nil {
			owner = before.CreditCode
		}
		ctx, caller, owns := callerCtx(t.Context(), callerSel, owner)
		resp, err := w.s.GetInstitution(ctx, testenv.Wire(t, &registryv1.GetInstitutionRequest{Id: id}))
		if wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound) != codes.OK {
			if before != nil && (owns || before.State == StateActive) {
				t.Fatalf("%s may see %s institution %s, but got %v", caller.Role, before.State, id, err)
			}
			return
		}
		in := resp.GetInstitution()
		if in.GetId() != id || (!owns && in.GetState() != registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE) {
			t.Fatalf("%s of %s read %s institution %s of %s", caller.Role, caller.Org, in.GetState(), in.GetId(), in.GetCreditCode())
		}
	})
}

// FuzzReview: the four review requests with any id, reason and version,
// by staff of the district, staff of the institution's own organisation,
// and the desk itself. (Only staff reach these handlers: the table says
// so, and TestAuthorizationMatrix holds the server to it.) Refusals are
// InvalidArgument, NotFound, FailedPrecondition, Aborted or
// PermissionDenied; nobody reviews their own organisation; a review that
// succeeds moves the state as the state machine says and records itself.
func FuzzReview(f *testing.F) {
	w := newFuzzWorld(f)
	f.Add(uint8(0), uint8(0), "", "licences checked", int64(0), uint8(0))
	f.Add(uint8(1), uint8(0), "", "incomplete", int64(1), uint8(0))
	f.Add(uint8(2), uint8(1), "", "report overdue", int64(0), uint8(0))
	f.Add(uint8(3), uint8(3), "", "report filed", int64(3), uint8(2))
	f.Add(uint8(0), uint8(0), "", "self-approval", int64(0), uint8(1))
	f.Add(uint8(0), uint8(9), "01JNOSUCHID", "  ", int64(-1), uint8(0))
	f.Add(uint8(7), uint8(2), "", strings.Repeat("理", 501), int64(1<<62), uint8(2))
	f.Fuzz(func(t *testing.T, action, sel uint8, fuzzedID, reason string, version int64, callerSel uint8) {
		id := w.target(sel, fuzzedID)
		before := w.read(t, id)
		owner := ""
		if before != nil {
			owner = before.CreditCode
		}
		ctx := t.Context()
		var self bool
		switch callerSel % 3 {
		case 0:
			ctx, _, _ = callerCtx(ctx, 0, owner) // district staff
		case 1:
			ctx, _, _ = callerCtx(ctx, 1, owner) // staff of the institution's own organisation
			self = before != nil
		}
		a := []Action{ActionApprove, ActionReject, ActionSuspend, ActionReinstate}[int(action)%4]
		var (
			got *registryv1.Institution
			err error
		)
		switch a {
		case ActionApprove:
			var r *registryv1.ApproveInstitutionResponse
			r, err = w.s.ApproveInstitution(ctx, testenv.Wire(t, &registryv1.ApproveInstitutionRequest{Id: id, Reason: reason, Version: version}))
			got = r.GetInstitution()
		case ActionReject:
			var r *registryv1.RejectInstitutionResponse
			r, err = w.s.RejectInstitution(ctx, testenv.Wire(t, &registryv1.RejectInstitutionRequest{Id: id, Reason: reason, Version: version}))
			got = r.GetInstitution()
		case ActionSuspend:
			var r *registryv1.SuspendInstitutionResponse
			r, err = w.s.SuspendInstitution(ctx, testenv.Wire(t, &registryv1.SuspendInstitutionRequest{Id: id, Reason: reason, Version: version}))
			got = r.GetInstitution()
		case ActionReinstate:
			var r *registryv1.ReinstateInstitutionResponse
			r, err = w.s.ReinstateInstitution(ctx, testenv.Wire(t, &registryv1.ReinstateInstitutionRequest{Id: id, Reason: reason, Version: version}))
			got = r.GetInstitution()
		}
		c := wantCodes(t, err, codes.OK, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.Aborted, codes.PermissionDenied)
		after := w.read(t, id)
		if c != codes.OK {
			if before != nil && (after.Version != before.Version || after.State != before.State) {
				t.Fatalf("refused %s (%v) changed the institution", a, err)
			}
			return
		}
		if self {
			t.Fatalf("staff of the institution's own organisation %s it", pastTense[a])
		}
		tr := transitions[a]
		if before.State != tr.from || after.State != tr.to || got.GetState() != tr.to.proto() ||
			len(after.Reviews) != len(before.Reviews)+1 || after.Version != before.Version+1 {
			t.Fatalf("%s moved %s v%d (%d reviews) to %s v%d (%d reviews)", a, before.State, before.Version, len(before.Reviews),
				after.State, after.Version, len(after.Reviews))
		}
		// Keep one institution in every state, so every action stays
		// reachable: the reviewed one leaves the world, a fresh one takes
		// its place.
		w.replace(t, id, before.State)
	})
}
