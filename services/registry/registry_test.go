package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

func TestServiceName(t *testing.T) {
	t.Parallel()
	if got := registryv1.RegistryService_ServiceDesc.ServiceName; got != ServiceName {
		t.Errorf("ServiceName = %q, the generated service is %q", ServiceName, got)
	}
}

func TestParseEnums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Kind
		err  bool
	}{
		{"BANK", KindBank, false},
		{"bank", KindBank, false},
		{"INSTITUTION_KIND_CARBON_ASSET_MANAGER", KindCarbonAssetManager, false},
		{"", Kind{}, false},
		{"UNSPECIFIED", Kind{}, true},
		{"BROKER", Kind{}, true},
	}
	for _, tt := range tests {
		got, err := ParseKind(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseKind(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	if got, ok := kindFromProto(registryv1.InstitutionKind(99)); ok || !got.IsZero() {
		t.Errorf("kindFromProto(99) = %v, %v; want the zero value, false", got, ok)
	}
	if diff := cmp.Diff([]string{"FINANCE_AXIS", "RIVERSIDE_BELT", "FINANCE_PARK", "OTHER_WUCHANG", "OUTSIDE_DISTRICT"}, protoenum.Strings(Zones())); diff != "" {
		t.Errorf("Zones (-want +got):\n%s", diff)
	}
}

// TestReview runs every action from every state: the four transitions of
// the state machine succeed, with their review record and event, and the
// twelve others are refused naming the current state, changing nothing.
func TestReview(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from   State
		action Action
		want   State  // zero when refused
		refuse string // the refusal's message after "institution <id> "
	}{
		{StatePending, ActionApprove, StateActive, ""},
		{StatePending, ActionReject, StateRejected, ""},
		{StatePending, ActionSuspend, State{}, "is PENDING; only ACTIVE institutions can be suspended"},
		{StatePending, ActionReinstate, State{}, "is PENDING; only SUSPENDED institutions can be reinstated"},
		{StateActive, ActionApprove, State{}, "is ACTIVE; only PENDING institutions can be approved"},
		{StateActive, ActionReject, State{}, "is ACTIVE; only PENDING institutions can be rejected"},
		{StateActive, ActionSuspend, StateSuspended, ""},
		{StateActive, ActionReinstate, State{}, "is ACTIVE; only SUSPENDED institutions can be reinstated"},
		{StateRejected, ActionApprove, State{}, "is REJECTED; only PENDING institutions can be approved"},
		{StateRejected, ActionReject, State{}, "is REJECTED; only PENDING institutions can be rejected"},
		{StateRejected, ActionSuspend, State{}, "is REJECTED; only ACTIVE institutions can be suspended"},
		{StateRejected, ActionReinstate, State{}, "is REJECTED; only SUSPENDED institutions can be reinstated"},
		{StateSuspended, ActionApprove, State{}, "is SUSPENDED; only PENDING institutions can be approved"},
		{StateSuspended, ActionReject, State{}, "is SUSPENDED; only PENDING institutions can be rejected"},
		{StateSuspended, ActionSuspend, State{}, "is SUSPENDED; only ACTIVE institutions can be suspended"},
		{StateSuspended, ActionReinstate, StateActive, ""},
	}
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		for _, tt := range tests {
			t.Run(tt.from.String()+"/"+tt.action.String(), func(t *testing.T) {
				t.Parallel()
				s, _ := newTestServer(t, st)
				before := reviewTo(t, s, tt.from)
				got, err := s.review(staffCtx(t), tt.action, before.GetId(), "  licences checked  ", 0)

				if tt.refuse != "" {
					if code(err) != codes.FailedPrecondition || !errors.Is(err, ErrInvalidTransition) {
						t.Fatalf("err = %v (%v), want ErrInvalidTransition, FailedPrecondition", err, code(err))
					}
					if diff := cmp.Diff("institution "+before.GetId()+" "+tt.refuse, message(err)); diff != "" {
						t.Errorf("message (-want +got):\n%s", diff)
					}
					after, err := s.GetInstitution(t.Context(), &registryv1.GetInstitutionRequest{Id: before.GetId()})
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(before, after.GetInstitution(), protocmp.Transform()); diff != "" {
						t.Errorf("a refused review changed the institution (-before +after):\n%s", diff)
					}
					return
				}
				if err != nil {
					t.Fatalf("review: %v", err)
				}
				want := cloneInst(before)
				want.State = tt.want.proto()
				want.Version = before.GetVersion() + 1
				want.UpdateTime = got.GetUpdateTime()
				want.Reviews = append(want.Reviews, &registryv1.ReviewRecord{
					Action:    tt.action.proto(),
					FromState: tt.from.proto(),
					ToState:   tt.want.proto(),
					Reason:    "licences checked",
					Actor:     staff.Subject,
					Time:      got.GetUpdateTime(),
				})
				if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
					t.Errorf("institution (-want +got):\n%s", diff)
				}
				if !got.GetUpdateTime().AsTime().After(before.GetUpdateTime().AsTime()) {
					t.Errorf("update_time %v not after %v", got.GetUpdateTime().AsTime(), before.GetUpdateTime().AsTime())
				}
				stored, err := s.GetInstitution(t.Context(), &registryv1.GetInstitutionRequest{Id: got.GetId()})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(got, stored.GetInstitution(), protocmp.Transform()); diff != "" {
					t.Errorf("stored institution differs from the answer (-answer +stored):\n%s", diff)
				}
				wantEvents := []string{SubjectRegistered + " " + got.GetId() + " v1"}
				for i, a := range append(seedPaths[tt.from], tt.action) {
					wantEvents = append(wantEvents, fmt.Sprintf("%s %s v%d", reviewSubjects[a], got.GetId(), i+2))
				}
				if diff := cmp.Diff(wantEvents, eventsOf(t, st, got.GetId())); diff != "" {
					t.Errorf("events written (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// eventsOf is the outbox entries of one institution: subtests share a store
// and run in parallel.
func eventsOf(t *testing.T, st store.Store, id string) []string {
	t.Helper()
	return slices.DeleteFunc(pending(t, st), func(s string) bool { return !strings.Contains(s, " "+id+" ") })
}

func cloneInst(in *registryv1.Institution) *registryv1.Institution {
	return gproto.Clone(in).(*registryv1.Institution)
}

func TestReviewRules(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		ctx := staffCtx(t)
		in := register(t, s, validRequest(t))

		// A reason is required, and the id.
		_, err := s.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: "", Reason: " "})
		if diff := cmp.Diff([]string{"id", "reason"}, violationFields(err)); diff != "" {
			t.Errorf("violations (-want +got):\n%s", diff)
		}
		// An unknown institution is NotFound.
		_, err = s.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: "01JNOSUCHINSTITUTION000000", Reason: "ok"})
		if code(err) != codes.NotFound {
			t.Errorf("unknown id: %v, want NotFound", err)
		}
		// An institution may not review itself.
		self := events.WithActor(ctx, events.Actor{Subject: "staff-from-the-firm", Role: "staff", OrganizationID: in.GetCreditCode()})
		_, err = s.ApproveInstitution(self, &registryv1.ApproveInstitutionRequest{Id: in.GetId(), Reason: "we are fine"})
		if code(err) != codes.PermissionDenied || !errors.Is(err, ErrSelfReview) {
			t.Errorf("self-approval: %v, want PermissionDenied", err)
		}
		// A stale version is Aborted, saying what the version is.
		_, err = s.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: in.GetId(), Reason: "ok", Version: 7})
		if code(err) != codes.Aborted || message(err) != "version 7 is ahead of the institution, which is at version 1; read it again" {
			t.Errorf("version ahead: %v (%v)", err, code(err))
		}
		got, err := s.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: in.GetId(), Reason: "ok", Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.SuspendInstitution(ctx, &registryv1.SuspendInstitutionRequest{Id: in.GetId(), Reason: "late report", Version: 1})
		if code(err) != codes.Aborted || message(err) != "version 1 is stale; the institution is at version 2; read it again" {
			t.Errorf("stale version: %v (%v)", err, code(err))
		}
		if _, err := s.SuspendInstitution(ctx, &registryv1.SuspendInstitutionRequest{Id: in.GetId(), Reason: "late report", Version: got.GetInstitution().GetVersion()}); err != nil {
			t.Errorf("suspend at the current version: %v", err)
		}
	})
}

func TestRegister(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		req := validRequest(t)
		req.CreditCode = "９１４２０１０６－ＭＡ４Ｋ－０００１０ｇ"
		req.NameZh = "  楚江碳金融银行武昌分行 "
		got := register(t, s, req)
		want := &registryv1.Institution{
			Id:         got.GetId(),
			CreditCode: "91420106MA4K00010G",
			NameZh:     "楚江碳金融银行武昌分行",
			NameEn:     req.GetNameEn(),
			Kind:       req.GetKind(),
			Tier:       req.GetTier(),
			Zone:       req.GetZone(),
			Address:    req.GetAddress(),
			Contact:    req.GetContact(),
			Licences:   req.GetLicences(),
			State:      registryv1.InstitutionState_INSTITUTION_STATE_PENDING,
			Version:    1,
			CreateTime: timestamppb.New(t0.Add(time.Second)),
			UpdateTime: timestamppb.New(t0.Add(time.Second)),
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("registered (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{SubjectRegistered + " " + got.GetId() + " v1"}, pending(t, st)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		read, err := s.GetInstitution(t.Context(), &registryv1.GetInstitutionRequest{Id: got.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, read.GetInstitution(), protocmp.Transform()); diff != "" {
			t.Errorf("read back (-registered +read):\n%s", diff)
		}
		if _, err := s.GetInstitution(t.Context(), &registryv1.GetInstitutionRequest{}); code(err) != codes.InvalidArgument {
			t.Errorf("GetInstitution without id: %v, want InvalidArgument", err)
		}
	})
}

func TestRegisterDuplicateCode(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		first := register(t, s, validRequest(t))
		code0 := first.GetCreditCode()
		fullWidth := strings.Map(func(r rune) rune { return r - '0' + '０' }, code0[:8]) + code0[8:]
		for _, typed := range []string{code0, strings.ToLower(code0), " " + code0[:6] + "-" + code0[6:] + " ", fullWidth} {
			req := validRequest(t)
			req.CreditCode = typed
			_, err := s.RegisterInstitution(staffCtx(t), req)
			if code(err) != codes.AlreadyExists || !errors.Is(err, ErrCreditCodeTaken) {
				t.Errorf("%q: %v (%v), want ErrCreditCodeTaken, AlreadyExists", typed, err, code(err))
				continue
			}
			if want := "an institution with credit code " + code0 + " is already registered (id " + first.GetId() + ")"; message(err) != want {
				t.Errorf("%q: message %q, want %q", typed, message(err), want)
			}
		}

		// Racing registrations of one code: exactly one wins.
		req := validRequest(t)
		var wg sync.WaitGroup
		results := make([]codes.Code, 8)
		for i := range results {
			wg.Go(func() {
				_, err := s.RegisterInstitution(staffCtx(t), req)
				results[i] = code(err)
			})
		}
		wg.Wait()
		slices.Sort(results)
		want := []codes.Code{codes.OK, codes.AlreadyExists, codes.AlreadyExists, codes.AlreadyExists, codes.AlreadyExists, codes.AlreadyExists, codes.AlreadyExists, codes.AlreadyExists}
		if diff := cmp.Diff(want, results); diff != "" {
			t.Errorf("racing registrations (-want +got):\n%s", diff)
		}
		stats, err := s.GetRegistryStats(t.Context(), &registryv1.GetRegistryStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if stats.GetTotal() != 2 {
			t.Errorf("total = %d after one registration and one race, want 2", stats.GetTotal())
		}
	})
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	tests := []struct {
		name   string
		edit   func(*registryv1.RegisterInstitutionRequest)
		fields []string
		detail string // part of the first violation's description
	}{
		{"valid", func(*registryv1.RegisterInstitutionRequest) {}, nil, ""},
		{"no English name is fine", func(r *registryv1.RegisterInstitutionRequest) { r.NameEn = "" }, nil, ""},
		{"email only", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Phone = "" }, nil, ""},
		{"mobile number", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Phone = "+86 138 0000 0000" }, nil, ""},
		{"bad credit code", func(r *registryv1.RegisterInstitutionRequest) { r.CreditCode = "91420106MA4K00010H" }, []string{"credit_code"}, `"91420106MA4K00010H": check character should be 'G', found 'H'`},
		{"empty request", func(r *registryv1.RegisterInstitutionRequest) { *r = registryv1.RegisterInstitutionRequest{} },
			[]string{"credit_code", "name_zh", "kind", "tier", "zone", "contact.name", "contact.phone"}, "the code is empty"},
		{"English in name_zh", func(r *registryv1.RegisterInstitutionRequest) { r.NameZh = "Chujiang Bank" }, []string{"name_zh"}, `"Chujiang Bank" has no Chinese characters`},
		{"name_zh too long", func(r *registryv1.RegisterInstitutionRequest) { r.NameZh = long("碳", 101) }, []string{"name_zh"}, "is 101 characters long; at most 100"},
		{"name_zh of 100 Chinese characters", func(r *registryv1.RegisterInstitutionRequest) { r.NameZh = long("碳", 100) }, nil, ""},
		{"name_en too long", func(r *registryv1.RegisterInstitutionRequest) { r.NameEn = long("a", 201) }, []string{"name_en"}, "is 201 characters long"},
		{"control character", func(r *registryv1.RegisterInstitutionRequest) { r.NameZh = "楚江\x00银行" }, []string{"name_zh"}, "contains control characters"},
		{"unknown kind", func(r *registryv1.RegisterInstitutionRequest) { r.Kind = 42 }, []string{"kind"}, "unknown value 42; one of BANK, SECURITIES"},
		{"unknown zone", func(r *registryv1.RegisterInstitutionRequest) { r.Zone = -1 }, []string{"zone"}, "unknown value -1"},
		{"address too long", func(r *registryv1.RegisterInstitutionRequest) { r.Address = long("路", 201) }, []string{"address"}, "at most 200"},
		{"bad email", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Email = "desk at chujiang" }, []string{"contact.email"}, `"desk at chujiang" is not an email address`},
		{"email with display name", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Email = "Desk <desk@chujiang.example>" }, []string{"contact.email"}, "is not an email address"},
		{"email without dotted domain", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Email = "desk@localhost" }, []string{"contact.email"}, "has no domain"},
		{"phone with letters", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Phone = "027-CALL-NOW" }, []string{"contact.phone"}, `has 'C'`},
		{"phone too short", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Phone = "12345" }, []string{"contact.phone"}, "has 5 digits"},
		{"no way to reach the contact", func(r *registryv1.RegisterInstitutionRequest) { r.Contact.Phone, r.Contact.Email = "", "" }, []string{"contact.phone"}, "a phone number or an email is required"},
		{"too many licences", func(r *registryv1.RegisterInstitutionRequest) {
			r.Licences = nil
			for i := range 21 {
				r.Licences = append(r.Licences, &registryv1.Licence{Name: "许可证", Number: fmt.Sprint(i)})
			}
		}, []string{"licences"}, "has 21 entries; at most 20"},
		{"licence without name, and repeated", func(r *registryv1.RegisterInstitutionRequest) {
			r.Licences = []*registryv1.Licence{{Name: "金融许可证", Number: "1"}, {Number: "2"}, {Name: "金融许可证", Number: "1"}}
		}, []string{"licences[1].name", "licences[2]"}, "is required"},
	}
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				req := validRequest(t)
				tt.edit(req)
				_, err := s.RegisterInstitution(staffCtx(t), req)
				if tt.fields == nil {
					if err != nil {
						t.Fatalf("err = %v, want none", err)
					}
					return
				}
				if code(err) != codes.InvalidArgument {
					t.Fatalf("err = %v (%v), want InvalidArgument", err, code(err))
				}
				if diff := cmp.Diff(tt.fields, violationFields(err)); diff != "" {
					t.Errorf("violated fields (-want +got):\n%s", diff)
				}
				if !strings.Contains(err.Error(), tt.detail) {
					t.Errorf("error %q does not say %q", err, tt.detail)
				}
			})
		}
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
	tests := []struct {
		name   string
		req    func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest
		want   func(in *registryv1.Institution) // edits the institution read, as the update should; nil: no change
		fields []string                         // violations, when refused
	}{
		{
			name: "implied mask: the non-empty fields",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(), Institution: &registryv1.Institution{
					NameEn: "Chujiang Carbon Bank, Wuchang", Zone: registryv1.Zone_ZONE_RIVERSIDE_BELT, Contact: &registryv1.Contact{Email: "new@chujiang.example"},
				}}
			},
			want: func(in *registryv1.Institution) {
				in.NameEn = "Chujiang Carbon Bank, Wuchang"
				in.Zone = registryv1.Zone_ZONE_RIVERSIDE_BELT
				in.Contact.Email = "new@chujiang.example"
			},
		},
		{
			name: "implied mask ignores output-only fields sent back",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				back := cloneInst(in)
				back.CreditCode = "91110108551385082Q"
				back.State = registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
				back.Address = "武汉市武昌区临江大道 96 号"
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(), Institution: back}
			},
			want: func(in *registryv1.Institution) { in.Address = "武汉市武昌区临江大道 96 号" },
		},
		{
			name: "explicit mask clears a field and leaves the others",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(),
					Institution: &registryv1.Institution{NameZh: "不应写入", Tier: registryv1.Tier_TIER_REGIONAL_HQ},
					UpdateMask:  mask("name_en", "licences", "tier")}
			},
			want: func(in *registryv1.Institution) {
				in.NameEn = ""
				in.Licences = nil
				in.Tier = registryv1.Tier_TIER_REGIONAL_HQ
			},
		},
		{
			name: "nested contact path",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(),
					Institution: &registryv1.Institution{Contact: &registryv1.Contact{Name: "李思远", Phone: "999"}},
					UpdateMask:  mask("contact.name")}
			},
			want: func(in *registryv1.Institution) { in.Contact.Name = "李思远" },
		},
		{
			name: "same values: nothing written",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(), Institution: &registryv1.Institution{NameZh: in.GetNameZh()}}
			},
		},
		{
			name: "unknown path",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(), Institution: &registryv1.Institution{}, UpdateMask: mask("nickname")}
			},
			fields: []string{"update_mask"},
		},
		{
			name: "fixed paths named in the mask",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(),
					Institution: &registryv1.Institution{CreditCode: "91110108551385082Q"}, UpdateMask: mask("credit_code", "state")}
			},
			fields: []string{"update_mask", "update_mask"},
		},
		{
			name: "nothing to change",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(), Institution: &registryv1.Institution{Version: 9}}
			},
			fields: []string{"institution"},
		},
		{
			name: "no version, no institution",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId()}
			},
			fields: []string{"version", "institution"},
		},
		{
			name: "the result must be valid",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(),
					Institution: &registryv1.Institution{Contact: &registryv1.Contact{Email: "nope"}}, UpdateMask: mask("name_zh", "kind", "contact.email")}
			},
			fields: []string{"institution.name_zh", "institution.kind", "institution.contact.email"},
		},
		{
			name: "unknown enum value",
			req: func(in *registryv1.Institution) *registryv1.UpdateInstitutionRequest {
				return &registryv1.UpdateInstitutionRequest{Id: in.GetId(), Version: in.GetVersion(), Institution: &registryv1.Institution{Kind: 77}}
			},
			fields: []string{"institution.kind"},
		},
	}
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				in := register(t, s, validRequest(t))
				got, err := s.UpdateInstitution(staffCtx(t), tt.req(in))
				if tt.fields != nil {
					if diff := cmp.Diff(tt.fields, violationFields(err)); diff != "" {
						t.Errorf("err = %v; violated fields (-want +got):\n%s", err, diff)
					}
					return
				}
				if err != nil {
					t.Fatalf("UpdateInstitution: %v", err)
				}
				want := cloneInst(in)
				wantEvents := []string{SubjectRegistered + " " + in.GetId() + " v1"}
				if tt.want != nil {
					tt.want(want)
					want.Version = 2
					want.UpdateTime = got.GetInstitution().GetUpdateTime()
					wantEvents = append(wantEvents, SubjectUpdated+" "+in.GetId()+" v2")
				}
				if diff := cmp.Diff(want, got.GetInstitution(), protocmp.Transform()); diff != "" {
					t.Errorf("updated (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(wantEvents, eventsOf(t, st, in.GetId())); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestUpdateStaleVersion(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		in := register(t, s, validRequest(t))
		upd := func(version int64, name string) error {
			_, err := s.UpdateInstitution(staffCtx(t), &registryv1.UpdateInstitutionRequest{
				Id: in.GetId(), Version: version, Institution: &registryv1.Institution{NameEn: name},
			})
			return err
		}
		if err := upd(1, "First"); err != nil {
			t.Fatal(err)
		}
		err := upd(1, "Second")
		if code(err) != codes.Aborted || !errors.Is(err, ErrStaleVersion) {
			t.Fatalf("stale update: %v (%v), want ErrStaleVersion, Aborted", err, code(err))
		}
		if diff := cmp.Diff("version 1 is stale; the institution is at version 2; read it again", message(err)); diff != "" {
			t.Errorf("message (-want +got):\n%s", diff)
		}

		// Two updates from the same version, at once: exactly one wins.
		var wg sync.WaitGroup
		results := make([]codes.Code, 6)
		for i := range results {
			wg.Go(func() { results[i] = code(upd(2, fmt.Sprintf("Racer %d", i))) })
		}
		wg.Wait()
		slices.Sort(results)
		want := []codes.Code{codes.OK, codes.Aborted, codes.Aborted, codes.Aborted, codes.Aborted, codes.Aborted}
		if diff := cmp.Diff(want, results); diff != "" {
			t.Errorf("racing updates (-want +got):\n%s", diff)
		}
		if _, err := s.UpdateInstitution(staffCtx(t), &registryv1.UpdateInstitutionRequest{Id: "01JNOSUCH", Version: 1, Institution: &registryv1.Institution{NameEn: "x"}}); code(err) != codes.NotFound {
			t.Errorf("unknown id: %v, want NotFound", err)
		}
	})
}

func TestStats(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		empty, err := s.GetRegistryStats(t.Context(), &registryv1.GetRegistryStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if empty.GetTotal() != 0 || empty.GetFinanceAxisShareBps() != 0 || len(empty.GetByKind()) != 11 {
			t.Errorf("empty register: %v", empty)
		}
		add := func(state State, kind registryv1.InstitutionKind, zone registryv1.Zone) {
			req := validRequest(t)
			req.Kind, req.Zone = kind, zone
			in := register(t, s, req)
			for _, a := range seedPaths[state] {
				if _, err := s.review(staffCtx(t), a, in.GetId(), "test", 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		const bank, verifier = registryv1.InstitutionKind_INSTITUTION_KIND_BANK, registryv1.InstitutionKind_INSTITUTION_KIND_VERIFIER
		const axis, belt = registryv1.Zone_ZONE_FINANCE_AXIS, registryv1.Zone_ZONE_RIVERSIDE_BELT
		add(StateActive, bank, axis)
		add(StateActive, bank, axis)
		add(StateActive, verifier, belt)
		add(StateSuspended, bank, axis)
		add(StatePending, verifier, axis)
		add(StateRejected, verifier, belt)
		got, err := s.GetRegistryStats(t.Context(), &registryv1.GetRegistryStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		type row = map[string]int64
		flat := func(cs []*registryv1.Count) row {
			r := row{}
			for _, c := range cs {
				if c.GetCount() != 0 {
					r[c.GetKey()] = c.GetCount()
				}
			}
			return r
		}
		type summary struct {
			Total, Active, OnAxis int64
			Bps                   int32
			Kind, Tier, Zone, St  row
		}
		want := summary{
			Total: 6, Active: 3, OnAxis: 2, Bps: 6667,
			Kind: row{"BANK": 3, "VERIFIER": 3},
			Tier: row{"BRANCH": 6},
			Zone: row{"FINANCE_AXIS": 4, "RIVERSIDE_BELT": 2},
			St:   row{"ACTIVE": 3, "PENDING": 1, "REJECTED": 1, "SUSPENDED": 1},
		}
		gotS := summary{
			Total: got.GetTotal(), Active: got.GetActive(), OnAxis: got.GetActiveOnFinanceAxis(), Bps: got.GetFinanceAxisShareBps(),
			Kind: flat(got.GetByKind()), Tier: flat(got.GetByTier()), Zone: flat(got.GetByZone()), St: flat(got.GetByState()),
		}
		if diff := cmp.Diff(want, gotS); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	})
}

// TestStoredDataIsOurs: a stored institution that does not decode is an
// internal error, never the caller's InvalidArgument.
func TestStoredDataIsOurs(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		data, err := gproto.Marshal(&registryv1.Institution{Id: "01JBAD", State: 99})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(t.Context(), store.Batch{Puts: []store.Put{{Kind: kindInstitution, ID: "01JBAD", Data: data}}}); err != nil {
			t.Fatal(err)
		}
		_, err = s.GetInstitution(t.Context(), &registryv1.GetInstitutionRequest{Id: "01JBAD"})
		if code(err) != codes.Internal {
			t.Errorf("corrupt record: %v (%v), want Internal", err, code(err))
		}
	})
}

// FuzzRegisterValidation feeds arbitrary text to every field of a
// registration: validation never panics, every refusal names a field, and
// what it accepts is already clean and passes again unchanged.
func FuzzRegisterValidation(f *testing.F) {
	f.Add("91420106MA4K00010G", "楚江碳金融银行", "Chujiang", "武昌区中南路 1 号", "王工", "027-8765 4321", "a@b.cn", "金融许可证", int32(1))
	f.Add("９１４２０１０６ＭＡ４Ｋ０００１０Ｇ", " 碳\x00 ", "", "", "", "+", "@", "", int32(-3))
	f.Fuzz(func(t *testing.T, code, zh, en, addr, person, phone, email, licence string, enum int32) {
		req := &registryv1.RegisterInstitutionRequest{
			CreditCode: code, NameZh: zh, NameEn: en, Address: addr,
			Kind: registryv1.InstitutionKind(enum), Tier: registryv1.Tier(enum), Zone: registryv1.Zone(enum),
			Contact:  &registryv1.Contact{Name: person, Phone: phone, Email: email},
			Licences: []*registryv1.Licence{{Name: licence}},
		}
		norm, d, err := validateRegister(req)
		if err != nil {
			if len(violationFields(err)) == 0 {
				t.Fatalf("refusal without a field: %v", err)
			}
			return
		}
		if !d.Clean().Equal(d) {
			t.Fatalf("accepted details are not clean: %+v", d)
		}
		again := &registryv1.RegisterInstitutionRequest{
			CreditCode: norm, NameZh: d.NameZh, NameEn: d.NameEn, Address: d.Address,
			Kind: d.Kind.proto(), Tier: d.Tier.proto(), Zone: d.Zone.proto(),
			Contact:  &registryv1.Contact{Name: d.Contact.Name, Phone: d.Contact.Phone, Email: d.Contact.Email},
			Licences: []*registryv1.Licence{{Name: d.Licences[0].Name}},
		}
		norm2, d2, err := validateRegister(again)
		if err != nil || norm2 != norm || !d2.Equal(d) {
			t.Fatalf("accepted request does not pass again unchanged: %v", err)
		}
	})
}
