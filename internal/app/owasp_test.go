package app_test

// The OWASP API Security Top 10 (2023) items that apply to the desk, one
// test each, against the whole process as app.Run starts it. docs/SECURITY.md
// maps each item to its test.

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestAPI1BrokenObjectLevelAuthorization: another organisation cannot read,
// change or list an institution's non-public record by its id; the answer
// is the one for an id that does not exist, whatever version is sent.
func TestAPI1BrokenObjectLevelAuthorization(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil, nil)
	orgA, orgB := newOrg(t), newOrg(t)
	marker := newMarker()

	// A registers itself and is PENDING.
	r, err := a.registry.RegisterInstitution(a.as(t, auth.Institution, orgA), registration(orgA, marker))
	if err != nil {
		t.Fatal(err)
	}
	pending := r.GetInstitution()
	id := pending.GetId()
	missing := "01JZZZZZZZZZZZZZZZZZZZZZZZ"

	others := map[string]context.Context{
		"institution B": a.as(t, auth.Institution, orgB),
		"enterprise B":  a.as(t, auth.Enterprise, orgB),
	}
	for who, ctx := range others {
		// Reads: NotFound, worded as for an id that does not exist.
		_, err := a.registry.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: id})
		wantCode(t, who+" reads A's pending record", err, codes.NotFound)
		_, errMissing := a.registry.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: missing})
		if got, want := status.Convert(err).Message(), strings.ReplaceAll(status.Convert(errMissing).Message(), missing, id); got != want {
			t.Errorf("%s: A's record answers %q, a missing one %q: they must not be told apart", who, got, want)
		}
		// Lists: never show it, however filtered.
		for _, req := range []*registryv1.ListInstitutionsRequest{
			{PageSize: 200},
			{PageSize: 200, State: registryv1.InstitutionState_INSTITUTION_STATE_PENDING},
			{PageSize: 200, NameContains: marker},
			{PageSize: 200, Kind: pending.GetKind(), Zone: pending.GetZone(), Tier: pending.GetTier()},
		} {
			resp, err := a.registry.ListInstitutions(ctx, req)
			if err != nil {
				t.Fatalf("%s lists: %v", who, err)
			}
			if slices.Contains(ids(resp.GetInstitutions()), id) {
				t.Errorf("%s lists A's pending record with %v", who, req)
			}
		}
	}

	// Updates by B: NotFound, whatever version B guesses (a version check
	// that answered first would tell B the record exists, and its version).
	ctxB := others["institution B"]
	for _, version := range []int64{1, 2, 7, 1 << 40} {
		_, err := a.registry.UpdateInstitution(ctxB, &registryv1.UpdateInstitutionRequest{
			Id: id, Version: version,
			Institution: &registryv1.Institution{NameEn: "Taken over by B"},
		})
		wantCode(t, fmt.Sprintf("B updates A's pending record at version %d", version), err, codes.NotFound)
		_, err = a.registry.UpdateInstitution(ctxB, &registryv1.UpdateInstitutionRequest{
			Id: missing, Version: version,
			Institution: &registryv1.Institution{NameEn: "Taken over by B"},
		})
		wantCode(t, fmt.Sprintf("B updates a missing record at version %d", version), err, codes.NotFound)
	}
	if got := a.read(t, id); got.GetVersion() != 1 || got.GetNameEn() != pending.GetNameEn() {
		t.Errorf("A's record after B's attempts: version %d, name_en %q; want it unchanged", got.GetVersion(), got.GetNameEn())
	}

	// A sees and lists its own record.
	ctxA := a.as(t, auth.Institution, orgA)
	if _, err := a.registry.GetInstitution(ctxA, &registryv1.GetInstitutionRequest{Id: id}); err != nil {
		t.Errorf("A reads its own record: %v", err)
	}
	if got := a.listedIDs(t, ctxA, marker); !slices.Contains(got, id) {
		t.Errorf("A's list does not show its own record: %v", got)
	}

	// Once ACTIVE it is in the public directory; still only A changes it.
	active := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE)
	if _, err := a.registry.GetInstitution(ctxB, &registryv1.GetInstitutionRequest{Id: active.GetId()}); err != nil {
		t.Errorf("B reads an ACTIVE institution of the directory: %v", err)
	}
	_, err = a.registry.UpdateInstitution(ctxB, &registryv1.UpdateInstitutionRequest{
		Id: active.GetId(), Version: active.GetVersion(), Institution: &registryv1.Institution{NameEn: "Taken over by B"},
	})
	wantCode(t, "B updates an ACTIVE institution of another organisation", err, codes.NotFound)
}

// TestAPI2BrokenAuthentication: forged, unsigned, algorithm-confused,
// endless, tampered and misplaced tokens are all refused with
// Unauthenticated, and no token ever reaches the logs.
func TestAPI2BrokenAuthentication(t *testing.T) {
	t.Parallel()
	logs := &testenv.LogBuffer{}
	a := startApp(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	pub := a.issuer.Key.Public().(ed25519.PublicKey)
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	now := time.Now().Unix()
	staffClaims := func() map[string]any {
		return map[string]any{
			"sub": "mallory", "role": "staff", "org": districtOrg,
			"iss": auth.DefaultIssuer, "aud": []string{auth.DefaultAudience},
			"iat": now, "nbf": now, "exp": now + 3600,
		}
	}
	edDSA := func(in []byte) []byte { return ed25519.Sign(a.issuer.Key, in) }
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	noExp := staffClaims()
	delete(noExp, "exp")

	// A valid institution token, with its payload changed to say staff.
	instTok := a.token(t, auth.Caller{Subject: "inst", Role: auth.Institution, Org: newOrg(t)})
	parts := strings.Split(instTok, ".")
	claims := map[string]any{}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("minted token payload does not decode: %v", err)
	}
	claims["role"] = "staff"
	tampered := parts[0] + "." + b64JSON(t, claims) + "." + parts[2]

	validStaff := a.token(t, auth.Caller{Subject: "staff-zhou", Role: auth.Staff, Org: districtOrg})
	tokens := map[string]string{
		"alg-none":             craftJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, staffClaims(), nil),
		"alg-None":             craftJWT(t, map[string]any{"alg": "None", "typ": "JWT"}, staffClaims(), nil),
		"hs256-public-key-raw": craftJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, staffClaims(), hs256(pub)),
		"hs256-public-key-pem": craftJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, staffClaims(), hs256(pubPEM)),
		"no-exp":               craftJWT(t, map[string]any{"alg": "EdDSA", "typ": "JWT"}, noExp, edDSA),
		"tampered-payload":     tampered,
		"signature-stripped":   parts[0] + "." + parts[1] + ".",
		"wrong-role":           craftJWT(t, map[string]any{"alg": "EdDSA", "typ": "JWT"}, withClaim(staffClaims(), "role", "admin"), edDSA),
		"wrong-issuer":         craftJWT(t, map[string]any{"alg": "EdDSA", "typ": "JWT"}, withClaim(staffClaims(), "iss", "someone-else"), edDSA),
		"expired-a-year-ago":   craftJWT(t, map[string]any{"alg": "EdDSA", "typ": "JWT"}, withClaim(staffClaims(), "exp", now-365*24*3600), edDSA),
	}
	// Every forged token asks for staff-only figures: a bypass would answer OK.
	stats := func(ctx context.Context) error {
		_, err := a.registry.GetRegistryStats(ctx, &registryv1.GetRegistryStatsRequest{})
		return err
	}
	for name, tok := range tokens {
		err := stats(bearer(t.Context(), tok))
		wantCode(t, name, err, codes.Unauthenticated)
		if strings.Contains(status.Convert(err).Message(), tok) {
			t.Errorf("%s: the refusal echoes the token", name)
		}
	}

	// A good token in anything but "authorization: Bearer <token>".
	for name, md := range map[string][]string{
		"authorization-basic":    {"authorization", "Basic " + validStaff},
		"authorization-token":    {"authorization", "Token " + validStaff},
		"authorization-bare":     {"authorization", validStaff},
		"x-api-key":              {"x-api-key", validStaff},
		"bearer-header":          {"bearer", validStaff},
		"x-authorization-bearer": {"x-authorization", "Bearer " + validStaff},
	} {
		wantCode(t, "token in "+name, stats(metadata.AppendToOutgoingContext(t.Context(), md...)), codes.Unauthenticated)
	}

	// The same token, sent properly, works: the refusals above were about
	// the token and how it was sent.
	if err := stats(bearer(t.Context(), validStaff)); err != nil {
		t.Fatalf("a valid staff token: %v", err)
	}
	// Calls that succeed and fail after authentication log too.
	_, err = a.registry.GetInstitution(bearer(t.Context(), instTok), &registryv1.GetInstitutionRequest{Id: "01JZZZZZZZZZZZZZZZZZZZZZZZ"})
	wantCode(t, "institution reads a missing id", err, codes.NotFound)
	wantCode(t, "institution reads the figures", stats(bearer(t.Context(), instTok)), codes.PermissionDenied)

	// No token, nor any part of one, is in the logs.
	out := logs.String()
	if !strings.Contains(out, "Unauthenticated") || !strings.Contains(out, "PermissionDenied") {
		t.Fatalf("the log capture missed the calls; logs:\n%s", out)
	}
	tokens["valid-staff"], tokens["valid-institution"] = validStaff, instTok
	for name, tok := range tokens {
		for i, seg := range strings.Split(tok, ".") {
			if len(seg) >= 16 && strings.Contains(out, seg) {
				t.Errorf("the logs hold part %d of the %s token", i+1, name)
			}
		}
	}
}

// TestAPI3BrokenObjectPropertyLevelAuthorization: an update changes only
// the descriptive fields its caller may change. Naming a fixed field
// (state, credit_code, version...) is InvalidArgument and changes nothing;
// an institution naming the fields staff checked at approval (kind, tier,
// zone) is PermissionDenied; fixed fields sent without a mask are ignored
// (mass assignment).
func TestAPI3BrokenObjectPropertyLevelAuthorization(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil, nil)
	org := newOrg(t)
	ctx := a.as(t, auth.Institution, org)
	r, err := a.registry.RegisterInstitution(ctx, registration(org, newMarker()))
	if err != nil {
		t.Fatal(err)
	}
	orig := r.GetInstitution()
	id := orig.GetId()
	unchanged := func(what string) {
		t.Helper()
		if got := a.read(t, id); !proto.Equal(got, orig) {
			t.Errorf("%s changed the record:\nbefore %v\nafter  %v", what, orig, got)
		}
	}
	evil := &registryv1.Institution{
		Id:         id,
		CreditCode: newOrg(t),
		State:      registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE,
		Version:    99,
		Reviews: []*registryv1.ReviewRecord{{
			Action: registryv1.ReviewAction_REVIEW_ACTION_APPROVE, ToState: registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE,
			Reason: "self-approved", Actor: "mallory",
		}},
		Kind: registryv1.InstitutionKind_INSTITUTION_KIND_EXCHANGE,
		Tier: registryv1.Tier_TIER_LEGAL_ENTITY,
		Zone: registryv1.Zone_ZONE_OUTSIDE_DISTRICT,
	}

	// Fixed fields named in the mask: InvalidArgument, for staff too.
	for _, path := range []string{"state", "credit_code", "version", "reviews", "id", "create_time", "update_time"} {
		for who, c := range map[string]context.Context{"institution": ctx, "staff": a.staff(t)} {
			_, err := a.registry.UpdateInstitution(c, &registryv1.UpdateInstitutionRequest{
				Id: id, Version: orig.GetVersion(), Institution: evil,
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name_en", path}},
			})
			wantCode(t, who+" names "+path+" in update_mask", err, codes.InvalidArgument)
			unchanged(who + " naming " + path)
		}
	}

	// Staff-checked fields, by mask, by the "*" mask or implied: PermissionDenied.
	for _, mask := range [][]string{{"kind"}, {"zone"}, {"tier"}, {"*"}, nil} {
		in := &registryv1.Institution{NameEn: "Renamed", Kind: evil.Kind, Tier: evil.Tier, Zone: evil.Zone}
		req := &registryv1.UpdateInstitutionRequest{Id: id, Version: orig.GetVersion(), Institution: in}
		if mask != nil {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: mask}
		}
		_, err := a.registry.UpdateInstitution(ctx, req)
		wantCode(t, fmt.Sprintf("institution changes kind/tier/zone with mask %v", mask), err, codes.PermissionDenied)
		unchanged(fmt.Sprintf("mask %v", mask))
	}

	// No mask: state, reviews, credit code and version ride along with a
	// legitimate change and are ignored.
	ride := &registryv1.Institution{
		Id: id, CreditCode: evil.CreditCode, State: evil.State, Version: evil.Version, Reviews: evil.Reviews,
		NameEn: "Chujiang Carbon Finance Bank, Wuchang",
	}
	u, err := a.registry.UpdateInstitution(ctx, &registryv1.UpdateInstitutionRequest{Id: id, Version: orig.GetVersion(), Institution: ride})
	if err != nil {
		t.Fatalf("update without a mask: %v", err)
	}
	got := a.read(t, id)
	if got.GetNameEn() != ride.GetNameEn() {
		t.Errorf("name_en = %q, want %q", got.GetNameEn(), ride.GetNameEn())
	}
	if got.GetState() != registryv1.InstitutionState_INSTITUTION_STATE_PENDING || len(got.GetReviews()) != 0 ||
		got.GetCreditCode() != org || got.GetVersion() != orig.GetVersion()+1 || u.GetInstitution().GetVersion() != got.GetVersion() {
		t.Errorf("fixed fields sent without a mask were applied: state %s, %d reviews, credit code %s, version %d",
			got.GetState(), len(got.GetReviews()), got.GetCreditCode(), got.GetVersion())
	}

	// Staff may change kind, tier and zone: the refusals above were about
	// the caller.
	if _, err := a.registry.UpdateInstitution(a.staff(t), &registryv1.UpdateInstitutionRequest{
		Id: id, Version: got.GetVersion(), Institution: &registryv1.Institution{Kind: evil.Kind},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"kind"}},
	}); err != nil {
		t.Errorf("staff changes kind: %v", err)
	}
}

// TestAPI3AttendeeContactsMasked: an attendee's phone and e-mail reach the
// event's host and staff in full, and every other caller masked in every
// answer that carries a registration, the organisation that filed it
// included; an organisation that neither hosts nor filed it cannot read,
// list, cancel or check in the registration, whatever it guesses (BOLA).
func TestAPI3AttendeeContactsMasked(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil, nil)
	hostOrg, entOrg, strangerOrg := newOrg(t), newOrg(t), newOrg(t)
	ev := a.eventOf(t, hostOrg, true, true)
	ent, host := a.as(t, auth.Enterprise, entOrg), a.as(t, auth.Institution, hostOrg)
	person := &talentv1.Attendee{Name: "周雨桐", Organization: "武昌示范钢铁有限公司", Phone: "+86 139-0271-0042", Email: "zhou.yutong@wcsteel.example"}
	full := func(r *talentv1.Registration) bool {
		return r.GetAttendee().GetPhone() == person.GetPhone() && r.GetAttendee().GetEmail() == person.GetEmail() && !r.GetContactMasked()
	}
	masked := func(what string, r *talentv1.Registration) {
		t.Helper()
		p, e := r.GetAttendee().GetPhone(), r.GetAttendee().GetEmail()
		if !r.GetContactMasked() || strings.Contains(strings.NewReplacer(" ", "", "-", "", "+", "").Replace(p), "13902710042") ||
			strings.Contains(e, "zhou.yutong") || strings.Count(p, "*") < 4 {
			t.Errorf("%s shows %q %q (masked %v) to a caller who is not the host", what, p, e, r.GetContactMasked())
		}
	}

	reg, err := a.talent().RegisterForEvent(ent, &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: person})
	if err != nil {
		t.Fatal(err)
	}
	id := reg.GetRegistration().GetId()
	masked("RegisterForEvent", reg.GetRegistration())
	got, err := a.talent().GetRegistration(ent, &talentv1.GetRegistrationRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	masked("GetRegistration", got.GetRegistration())
	for _, req := range []*talentv1.ListRegistrationsRequest{{EventId: ev.GetId()}, {}} {
		list, err := a.talent().ListRegistrations(ent, req)
		if err != nil || len(list.GetRegistrations()) != 1 {
			t.Fatalf("the registrant lists %d registrations (%v); want its own", len(list.GetRegistrations()), err)
		}
		masked("ListRegistrations", list.GetRegistrations()[0])
	}
	for who, ctx := range map[string]context.Context{"the host": host, "staff": a.staff(t)} {
		got, err := a.talent().GetRegistration(ctx, &talentv1.GetRegistrationRequest{Id: id})
		if err != nil || !full(got.GetRegistration()) {
			t.Errorf("%s reads %v (%v); want the contact in full", who, got.GetRegistration().GetAttendee(), err)
		}
	}

	// Strangers: the same answer as for a registration that does not exist.
	missing := ev.GetId() + "-999999"
	for who, ctx := range map[string]context.Context{
		"an institution": a.as(t, auth.Institution, strangerOrg),
		"an enterprise":  a.as(t, auth.Enterprise, strangerOrg),
	} {
		_, err := a.talent().GetRegistration(ctx, &talentv1.GetRegistrationRequest{Id: id})
		_, errMissing := a.talent().GetRegistration(ctx, &talentv1.GetRegistrationRequest{Id: missing})
		wantCode(t, who+" reads the registration", err, codes.NotFound)
		if got, want := status.Convert(err).Message(), strings.ReplaceAll(status.Convert(errMissing).Message(), missing, id); got != want {
			t.Errorf("%s: the registration answers %q, a missing one %q", who, got, want)
		}
		list, err := a.talent().ListRegistrations(ctx, &talentv1.ListRegistrationsRequest{EventId: ev.GetId(), PageSize: 200})
		if err != nil || len(list.GetRegistrations()) != 0 {
			t.Errorf("%s lists %d registrations of the event (%v)", who, len(list.GetRegistrations()), err)
		}
		for _, version := range []int64{0, 1, 2} {
			_, err = a.talent().CancelRegistration(ctx, &talentv1.CancelRegistrationRequest{Id: id, Version: version})
			wantCode(t, fmt.Sprintf("%s cancels at version %d", who, version), err, codes.NotFound)
		}
	}
	_, err = a.talent().CheckIn(a.as(t, auth.Institution, strangerOrg), &talentv1.CheckInRequest{Id: id})
	wantCode(t, "another institution checks in", err, codes.NotFound)
	_, err = a.talent().CheckIn(a.as(t, auth.Institution, entOrg), &talentv1.CheckInRequest{Id: id})
	wantCode(t, "the registrant's organisation checks in", err, codes.PermissionDenied)
	if got, err := a.talent().GetRegistration(a.staff(t), &talentv1.GetRegistrationRequest{Id: id}); err != nil ||
		got.GetRegistration().GetState() != talentv1.RegistrationState_REGISTRATION_STATE_CONFIRMED || got.GetRegistration().GetVersion() != 1 {
		t.Errorf("after the refused calls the registration is %v (%v); want it unchanged", got.GetRegistration(), err)
	}
}

// TestAPI4UnrestrictedResourceConsumption: pages are capped, oversized
// messages and search text are refused, and each caller's writes are rate
// limited without starving the others.
func TestAPI4UnrestrictedResourceConsumption(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil, nil)
	staff := a.staff(t)

	t.Run("page-size-capped-at-200", func(t *testing.T) {
		marker := newMarker()
		var wg sync.WaitGroup
		errc := make(chan error, 201)
		for i := range 201 {
			wg.Go(func() {
				_, err := a.registry.RegisterInstitution(staff, registration(newOrg(t), fmt.Sprintf("%s %d", marker, i)))
				errc <- err
			})
			if i%8 == 7 {
				wg.Wait()
			}
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("register: %v", err)
			}
		}
		r, err := a.registry.ListInstitutions(staff, &registryv1.ListInstitutionsRequest{PageSize: 100000, NameContains: marker})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(r.GetInstitutions()); n != 200 || r.GetNextPageToken() == "" {
			t.Fatalf("page_size 100000 returned %d institutions (next page token %q), want 200 and a token", n, r.GetNextPageToken())
		}
		r, err = a.registry.ListInstitutions(staff, &registryv1.ListInstitutionsRequest{PageSize: 100000, NameContains: marker, PageToken: r.GetNextPageToken()})
		if err != nil || len(r.GetInstitutions()) != 1 || r.GetNextPageToken() != "" {
			t.Fatalf("second page: %d institutions, token %q, %v; want the 201st and no token", len(r.GetInstitutions()), r.GetNextPageToken(), err)
		}
		_, err = a.registry.ListInstitutions(staff, &registryv1.ListInstitutionsRequest{PageSize: -1})
		wantCode(t, "page_size -1", err, codes.InvalidArgument)
	})

	t.Run("message-over-4MiB", func(t *testing.T) {
		big := strings.Repeat("x", 5<<20)
		req := registration(newOrg(t), "")
		req.NameEn = big
		_, err := a.registry.RegisterInstitution(staff, req)
		wantCode(t, "a 5 MiB registration", err, codes.ResourceExhausted)
		_, err = a.registry.ListInstitutions(staff, &registryv1.ListInstitutionsRequest{NameContains: big})
		wantCode(t, "a 5 MiB list request", err, codes.ResourceExhausted)
		// Below the limit, the fields' own bounds answer.
		req.NameEn = strings.Repeat("x", 3<<20)
		_, err = a.registry.RegisterInstitution(staff, req)
		wantCode(t, "a 3 MiB registration", err, codes.InvalidArgument)
	})

	t.Run("long-name-contains", func(t *testing.T) {
		_, err := a.registry.ListInstitutions(staff, &registryv1.ListInstitutionsRequest{NameContains: strings.Repeat("碳", 101)})
		wantCode(t, "name_contains of 101 characters", err, codes.InvalidArgument)
		_, err = a.registry.ListInstitutions(staff, &registryv1.ListInstitutionsRequest{NameContains: strings.Repeat("碳", 100)})
		wantCode(t, "name_contains of 100 characters", err, codes.OK)
	})

	t.Run("write-rate-per-caller", func(t *testing.T) {
		t.Parallel()
		limited := startApp(t, nil, func(c *app.Config) { c.WritesPerSecond, c.WriteBurst = 5, 5 })
		flooder := limited.as(t, auth.Institution, newOrg(t))
		// Cheap writes (refused by validation, after the limiter counted
		// them) so the burst is spent well within the 200 ms that refill
		// one token.
		flood := func(ctx context.Context) error {
			_, err := limited.registry.RegisterInstitution(ctx, &registryv1.RegisterInstitutionRequest{})
			return err
		}
		// The bucket starts full: five pass. It refills one token per 200 ms,
		// so a sixth within that time is refused; on a machine so slow
		// that it was not, a later one must be.
		start := time.Now()
		var got []codes.Code
		var sixthAt time.Duration
		for i := 0; i < 20 && !slices.Contains(got, codes.ResourceExhausted); i++ {
			if i == 5 {
				sixthAt = time.Since(start)
			}
			got = append(got, status.Code(flood(flooder)))
		}
		want := []codes.Code{codes.InvalidArgument, codes.InvalidArgument, codes.InvalidArgument, codes.InvalidArgument, codes.InvalidArgument}
		switch {
		case len(got) < 6 || !slices.Equal(got[:5], want):
			t.Fatalf("rapid writes answered %v; want the first five %v", got, want)
		case got[5] != codes.ResourceExhausted && sixthAt < 150*time.Millisecond:
			t.Fatalf("the 6th write, %s after the first, answered %s; want ResourceExhausted (all: %v)", sixthAt, got[5], got)
		case got[len(got)-1] != codes.ResourceExhausted:
			t.Fatalf("20 rapid writes were never refused: %v", got)
		}
		// Reads are not limited, and another caller still writes.
		if _, err := limited.registry.ListInstitutions(flooder, &registryv1.ListInstitutionsRequest{}); err != nil {
			t.Errorf("a read by the limited caller: %v", err)
		}
		other := newOrg(t)
		if _, err := limited.registry.RegisterInstitution(limited.as(t, auth.Institution, other), registration(other, "")); err != nil {
			t.Errorf("another caller's write: %v", err)
		}
		_, err := limited.registry.ApproveInstitution(limited.staff(t), &registryv1.ApproveInstitutionRequest{})
		wantCode(t, "staff's write", err, codes.InvalidArgument)
	})
}

// TestAPI5BrokenFunctionLevelAuthorization: the review functions and the
// district figures are staff's alone, and no organisation reviews itself,
// not even through a staff token of its own.
func TestAPI5BrokenFunctionLevelAuthorization(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil, nil)
	pending := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_PENDING)
	pending2 := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_PENDING)
	active := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE)
	suspended := a.inState(t, newOrg(t), registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED)

	type function struct {
		name   string
		target *registryv1.Institution
		call   func(ctx context.Context) error
	}
	functions := []function{
		{"ApproveInstitution", pending, func(ctx context.Context) error {
			_, err := a.registry.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: pending.GetId(), Reason: "looks fine"})
			return err
		}},
		{"RejectInstitution", pending2, func(ctx context.Context) error {
			_, err := a.registry.RejectInstitution(ctx, &registryv1.RejectInstitutionRequest{Id: pending2.GetId(), Reason: "competitor"})
			return err
		}},
		{"SuspendInstitution", active, func(ctx context.Context) error {
			_, err := a.registry.SuspendInstitution(ctx, &registryv1.SuspendInstitutionRequest{Id: active.GetId(), Reason: "competitor"})
			return err
		}},
		{"ReinstateInstitution", suspended, func(ctx context.Context) error {
			_, err := a.registry.ReinstateInstitution(ctx, &registryv1.ReinstateInstitutionRequest{Id: suspended.GetId(), Reason: "back in business"})
			return err
		}},
		{"GetRegistryStats", nil, func(ctx context.Context) error {
			_, err := a.registry.GetRegistryStats(ctx, &registryv1.GetRegistryStatsRequest{})
			return err
		}},
	}
	for _, f := range functions {
		callers := map[string]context.Context{
			"institution of another organisation": a.as(t, auth.Institution, newOrg(t)),
			"enterprise of another organisation":  a.as(t, auth.Enterprise, newOrg(t)),
		}
		if f.target != nil {
			org := f.target.GetCreditCode()
			callers["the institution itself"] = a.as(t, auth.Institution, org)
			callers["an enterprise token of the institution's organisation"] = a.as(t, auth.Enterprise, org)
			callers["a staff token of the institution's own organisation"] = a.as(t, auth.Staff, org)
		}
		for who, ctx := range callers {
			wantCode(t, who+" calls "+f.name, f.call(ctx), codes.PermissionDenied)
		}
		if f.target != nil {
			if got := a.read(t, f.target.GetId()); got.GetState() != f.target.GetState() || got.GetVersion() != f.target.GetVersion() {
				t.Errorf("after refused %s calls the institution is %s v%d, want %s v%d", f.name,
					got.GetState(), got.GetVersion(), f.target.GetState(), f.target.GetVersion())
			}
		}
	}
	// District staff may: the refusals above were about the callers.
	for _, f := range functions {
		if err := f.call(a.staff(t)); err != nil {
			t.Errorf("district staff calls %s: %v", f.name, err)
		}
	}
}

// craftJWT builds a token by hand, as an attacker would: sign nil leaves
// the signature empty.
func craftJWT(t *testing.T, header, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	in := b64JSON(t, header) + "." + b64JSON(t, claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func withClaim(c map[string]any, k string, v any) map[string]any {
	c[k] = v
	return c
}
