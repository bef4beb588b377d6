package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/services/gateway"
)

// TestREST walks the desk's main calls through the gateway as a REST
// client would, JSON in and out: an institution registers and staff
// approve it; it creates and publishes a product; an enterprise posts a
// demand, reads its matches and the explanation; staff watch the feed
// while the institution accepts; staff run a talent-base event that the
// enterprise registers for, and keep talent profiles.
func TestREST(t *testing.T) {
	d := startDesk(t)
	staff := devSignIn(t, d, "staff").Token
	inst, ent := newOrg(t), newOrg(t)
	instTok, entTok := d.token(t, auth.Institution, inst), d.token(t, auth.Enterprise, ent)
	const marker = "mkrest01q"

	// Registry: the institution registers itself; staff approve it.
	var reg registryv1.RegisterInstitutionResponse
	d.call(t, "POST", "/v1/institutions", instTok, map[string]any{
		"creditCode": inst, "nameZh": "楚江碳金融银行武昌分行", "nameEn": "Chujiang Carbon Finance Bank " + marker,
		"kind": "INSTITUTION_KIND_BANK", "tier": "TIER_BRANCH", "zone": "ZONE_FINANCE_AXIS",
		"address": "武汉市武昌区中南路 88 号",
		"contact": map[string]any{"name": "王晓岚", "phone": "027-8765 4321", "email": "desk@chujiang.example"},
	}, &reg)
	in := reg.GetInstitution()
	if in.GetState() != registryv1.InstitutionState_INSTITUTION_STATE_PENDING || in.GetCreditCode() != inst {
		t.Fatalf("registered %v", in)
	}
	var appr registryv1.ApproveInstitutionResponse
	d.call(t, "POST", "/v1/institutions/"+in.GetId()+":approve", staff,
		fmt.Sprintf(`{"reason": "licences checked", "version": "%d"}`, in.GetVersion()), &appr)
	if appr.GetInstitution().GetState() != registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE {
		t.Fatalf("approved %v", appr.GetInstitution())
	}
	var got registryv1.GetInstitutionResponse
	d.call(t, "GET", "/v1/institutions/"+in.GetId(), instTok, nil, &got)
	if got.GetInstitution().GetState() != registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE || len(got.GetInstitution().GetReviews()) != 1 {
		t.Errorf("read back %v", got.GetInstitution())
	}
	var list registryv1.ListInstitutionsResponse
	d.call(t, "GET", "/v1/institutions?name_contains="+marker+"&state=INSTITUTION_STATE_ACTIVE&pageSize=10", staff, nil, &list)
	if len(list.GetInstitutions()) != 1 || list.GetInstitutions()[0].GetId() != in.GetId() {
		t.Errorf("listed %v, want just %s", list.GetInstitutions(), in.GetId())
	}
	var rstats registryv1.GetRegistryStatsResponse
	d.call(t, "GET", "/v1/registry/stats", staff, nil, &rstats)
	if rstats.GetActive() != 1 {
		t.Errorf("registry stats: %d active, want 1", rstats.GetActive())
	}

	// Catalog: the institution creates a product and publishes it, once the
	// catalog's view of the registry (fed by events) has the approval.
	const amount = 12_345_678
	var created catalogv1.CreateProductResponse
	untilKnown(t, "create the product", func() response {
		return d.do(t, "POST", "/v1/products", instTok, map[string]any{"product": map[string]any{
			"nameZh": "楚江碳挂钩贷款", "nameEn": "Chujiang Carbon-Linked Loan " + marker,
			"category": "PRODUCT_CATEGORY_CARBON_LINKED_LOAN", "demandKinds": []string{"DEMAND_KIND_FINANCING"},
			"amount":  map[string]any{"minYuan": fmt.Sprint(amount), "maxYuan": fmt.Sprint(amount)},
			"term":    map[string]any{"minMonths": 6, "maxMonths": 36},
			"price":   map[string]any{"annualRate": map[string]any{"minBps": 320, "maxBps": 450}},
			"contact": map[string]any{"name": "王晓岚", "phone": "027-8765 4321"},
		}})
	}, &created)
	product := created.GetProduct()
	if product.GetState() != catalogv1.ProductState_PRODUCT_STATE_DRAFT || product.GetInstitutionId() != in.GetId() {
		t.Fatalf("created %v", product)
	}
	untilKnown(t, "publish the product", func() response {
		return d.do(t, "POST", "/v1/products/"+product.GetId()+":publish", instTok, "{}")
	}, nil)
	var products catalogv1.ListProductsResponse
	d.call(t, "GET", "/v1/products?institution_id="+in.GetId()+"&state=PRODUCT_STATE_PUBLISHED", instTok, nil, &products)
	if len(products.GetProducts()) != 1 || products.GetProducts()[0].GetId() != product.GetId() {
		t.Errorf("published products %v", products.GetProducts())
	}
	var cstats catalogv1.GetCatalogStatsResponse
	d.call(t, "GET", "/v1/catalog/stats", staff, nil, &cstats)
	if cstats.GetPublished() != 1 {
		t.Errorf("catalog stats: %d published, want 1", cstats.GetPublished())
	}

	// Matching: staff watch the institution's matches; the enterprise posts
	// a demand the product fits and reads its match (proposed by the demand,
	// or by the product once matching's index holds it).
	watch := d.open(t, "/v1/matches:watch?institution_id="+in.GetId(), staff)
	var posted matchingv1.PostDemandResponse
	eventually(t, "post the demand", func() bool {
		r := d.do(t, "POST", "/v1/demands", entTok, map[string]any{"demand": map[string]any{
			"enterpriseName": "武昌示范钢铁有限公司", "sector": "SECTOR_STEEL", "etsCovered": true,
			"region": "420106", "zone": "ZONE_FINANCE_AXIS", "kind": "DEMAND_KIND_FINANCING",
			"categories": []string{"PRODUCT_CATEGORY_CARBON_LINKED_LOAN"}, "amountYuan": fmt.Sprint(amount),
			"termMonths": 12, "annualEmissionsTonnes": "1200000", "description": "节能技改融资",
			"deadline": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339),
		}})
		if r.status == http.StatusServiceUnavailable { // the index is loading
			return false
		}
		if r.status != http.StatusOK {
			t.Fatalf("post demand: HTTP %d: %s", r.status, r.body)
		}
		if err := protojson.Unmarshal(r.body, &posted); err != nil {
			t.Fatal(err)
		}
		return true
	})
	demand := posted.GetDemand()
	if demand.GetEnterpriseCreditCode() != ent || demand.GetState() != matchingv1.DemandState_DEMAND_STATE_OPEN {
		t.Fatalf("posted %v", demand)
	}
	var match *matchingv1.Match
	eventually(t, "the demand's match", func() bool {
		var ms matchingv1.ListMatchesResponse
		d.call(t, "GET", "/v1/matches?demand_id="+demand.GetId(), entTok, nil, &ms)
		for _, m := range ms.GetMatches() {
			if m.GetProductId() == product.GetId() {
				match = m
			}
		}
		return match != nil
	})
	var dem matchingv1.GetDemandResponse
	d.call(t, "GET", "/v1/demands/"+demand.GetId(), entTok, nil, &dem)
	if len(dem.GetMatches()) != 1 {
		t.Errorf("GET demand: %d matches, want 1", len(dem.GetMatches()))
	}
	var why matchingv1.ExplainMatchResponse
	d.call(t, "GET", "/v1/demands/"+demand.GetId()+"/products/"+product.GetId()+":explain", entTok, nil, &why)
	if !why.GetEligible() || len(why.GetChecks()) == 0 || len(why.GetScoreParts()) == 0 || why.GetMatch().GetId() != match.GetId() {
		t.Errorf("explain: %v", &why)
	}
	waitLine(t, watch, match.GetId(), "MATCH_STATE_PROPOSED")

	var accepted matchingv1.AcceptMatchResponse
	d.call(t, "POST", "/v1/matches/"+match.GetId()+":accept", instTok, fmt.Sprintf(`{"version": %d}`, match.GetVersion()), &accepted)
	if accepted.GetMatch().GetState() != matchingv1.MatchState_MATCH_STATE_ACCEPTED {
		t.Fatalf("accepted %v", accepted.GetMatch())
	}
	waitLine(t, watch, match.GetId(), "MATCH_STATE_ACCEPTED")
	var mstats matchingv1.GetMatchStatsResponse
	d.call(t, "GET", "/v1/matches/stats", staff, nil, &mstats)
	if mstats.GetMatchesAccepted() != 1 || mstats.GetDemandsPosted() != 1 {
		t.Errorf("match stats: %v", &mstats)
	}

	// Talent base: staff create and publish a district event; the
	// enterprise registers a person; staff keep a talent profile.
	start := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Hour)
	var ev talentv1.CreateEventResponse
	d.call(t, "POST", "/v1/talent/events", staff, map[string]any{"event": map[string]any{
		"titleZh": "碳排放管理员（核算员）培训班", "titleEn": "Carbon Emission Manager Training " + marker,
		"kind": "EVENT_KIND_TRAINING", "description": "核算指南与排放报告编制",
		"startTime": start.Format(time.RFC3339), "endTime": start.Add(8 * time.Hour).Format(time.RFC3339),
		"registrationDeadline": start.Add(-24 * time.Hour).Format(time.RFC3339),
		"venue":                "武汉市武昌区中北路 86 号 三楼培训室", "zone": "ZONE_FINANCE_AXIS", "capacity": 30, "trainingHours": 8,
		"topics": map[string]any{"sectors": []string{"SECTOR_POWER", "SECTOR_STEEL"}, "jobTypes": []string{"JOB_TYPE_ACCOUNTING"}},
	}}, &ev)
	event := ev.GetEvent()
	if event.GetState() != talentv1.EventState_EVENT_STATE_DRAFT {
		t.Fatalf("created %v", event)
	}
	var pub talentv1.PublishEventResponse
	d.call(t, "POST", "/v1/talent/events/"+event.GetId()+":publish", staff, fmt.Sprintf(`{"version": "%d"}`, event.GetVersion()), &pub)
	if pub.GetEvent().GetState() != talentv1.EventState_EVENT_STATE_PUBLISHED {
		t.Fatalf("published %v", pub.GetEvent())
	}
	var regd talentv1.RegisterForEventResponse
	d.call(t, "POST", "/v1/talent/events/"+event.GetId()+"/registrations", entTok, map[string]any{"attendee": map[string]any{
		"name": "测试学员", "organization": "武昌示范钢铁有限公司", "role": "碳排放管理员",
		"phone": "139 0000 0001", "email": "trainee@wcsteel.example",
	}}, &regd)
	if regd.GetRegistration().GetState() != talentv1.RegistrationState_REGISTRATION_STATE_CONFIRMED || regd.GetRegistration().GetEventId() != event.GetId() {
		t.Fatalf("registered %v", regd.GetRegistration())
	}
	var regs talentv1.ListRegistrationsResponse
	d.call(t, "GET", "/v1/talent/events/"+event.GetId()+"/registrations", staff, nil, &regs)
	if len(regs.GetRegistrations()) != 1 {
		t.Errorf("registrations %v", regs.GetRegistrations())
	}
	var estats talentv1.GetEventStatsResponse
	d.call(t, "GET", "/v1/talent/events/"+event.GetId()+"/stats", staff, nil, &estats)
	if estats.GetTaken() != 1 || estats.GetCapacity() != 30 {
		t.Errorf("event stats %v", &estats)
	}
	var tal talentv1.CreateTalentResponse
	d.call(t, "POST", "/v1/talents", staff, map[string]any{"talent": map[string]any{
		"name": "周雨桐", "organization": "楚江碳金融银行武昌分行", "organizationCreditCode": inst,
		"role": "绿色金融客户经理", "email": "zhou.yutong@chujiang.example", "skills": []string{"碳资产质押", "碳核算"},
	}}, &tal)
	var talents talentv1.ListTalentsResponse
	d.call(t, "GET", "/v1/talents?organization_credit_code="+inst, staff, nil, &talents)
	if len(talents.GetTalents()) != 1 || talents.GetTalents()[0].GetId() != tal.GetTalent().GetId() {
		t.Errorf("talents %v", talents.GetTalents())
	}
	var hours talentv1.GetHoursLedgerResponse
	d.call(t, "GET", "/v1/talents/"+tal.GetTalent().GetId()+"/hours", staff, nil, &hours)
	if hours.GetTalentId() != tal.GetTalent().GetId() {
		t.Errorf("hours ledger %v", &hours)
	}
}

// untilKnown repeats a call while it answers FAILED_PRECONDITION (a
// service's view of another's data has not caught up yet) and decodes its
// answer into out.
func untilKnown(t *testing.T, what string, call func() response, out proto.Message) {
	t.Helper()
	eventually(t, what, func() bool {
		r := call()
		if r.status == http.StatusOK {
			if out != nil {
				if err := protojson.Unmarshal(r.body, out); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			return true
		}
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "FAILED_PRECONDITION") {
			t.Fatalf("%s: HTTP %d: %s", what, r.status, r.body)
		}
		return false
	})
}

// waitLine reads the watch stream until a change of match id to state.
func waitLine(t *testing.T, s *stream, id, state string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("the watch stream ended before match %s became %s", id, state)
			}
			var msg struct {
				Result *json.RawMessage `json:"result"`
				Error  *json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Error != nil || msg.Result == nil {
				t.Fatalf("watch line %q: not {\"result\": ...}: %v", line, err)
			}
			var ch matchingv1.WatchMatchesResponse
			if err := protojson.Unmarshal(*msg.Result, &ch); err != nil {
				t.Fatalf("watch line %q: %v", line, err)
			}
			if ch.GetMatch().GetId() == id && ch.GetMatch().GetState().String() == state {
				return
			}
		case <-timeout:
			t.Fatalf("no change of match %s to %s on the watch stream within 10s", id, state)
		}
	}
}

// devSignIn picks a demo identity on the sign-in endpoint.
func devSignIn(t *testing.T, d *desk, identity string) gateway.DevTokenResponse {
	t.Helper()
	r := d.do(t, "POST", "/api/dev/token", "", map[string]string{"identity": identity})
	if r.status != http.StatusOK {
		t.Fatalf("POST /api/dev/token %s: HTTP %d: %s", identity, r.status, r.body)
	}
	var tok gateway.DevTokenResponse
	if err := json.Unmarshal(r.body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("POST /api/dev/token: %v: %s", err, r.body)
	}
	return tok
}

// TestRESTErrors checks the error body: the gRPC code and its name, the
// field violations naming the field and showing the value, the request id,
// and the HTTP status; and that nothing answers without a token.
func TestRESTErrors(t *testing.T) {
	d := startDesk(t)
	staff := devSignIn(t, d, "staff").Token

	t.Run("bad input names the field and the value", func(t *testing.T) {
		e := d.failure(t, "POST", "/v1/institutions", staff, map[string]any{
			"creditCode": "91420106MA60H1TDF6", "nameZh": "楚江碳金融银行", "kind": "INSTITUTION_KIND_BANK",
			"tier": "TIER_BRANCH", "zone": "ZONE_FINANCE_AXIS", "contact": map[string]any{"name": "王晓岚", "phone": "027-8765 4321"},
		}, http.StatusBadRequest)
		if e.Code != 3 || e.Status != "INVALID_ARGUMENT" {
			t.Errorf("code %d %s, want 3 INVALID_ARGUMENT", e.Code, e.Status)
		}
		i := slices.IndexFunc(e.Violations, func(v struct {
			Field       string `json:"field"`
			Description string `json:"description"`
		}) bool {
			return v.Field == "credit_code"
		})
		if i < 0 || !strings.Contains(e.Violations[i].Description, "91420106MA60H1TDF6") {
			t.Errorf("violations %+v: want credit_code with the value given", e.Violations)
		}
	})
	t.Run("a misspelt field is refused", func(t *testing.T) {
		e := d.failure(t, "POST", "/v1/institutions", staff, `{"creditCod": "x"}`, http.StatusBadRequest)
		if e.Status != "INVALID_ARGUMENT" || !strings.Contains(e.Message, "creditCod") {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("a bad query parameter", func(t *testing.T) {
		e := d.failure(t, "GET", "/v1/institutions?state=ACTIVEISH", staff, nil, http.StatusBadRequest)
		if e.Status != "INVALID_ARGUMENT" || !strings.Contains(e.Message, "ACTIVEISH") {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("not found", func(t *testing.T) {
		e := d.failure(t, "GET", "/v1/products/01NOSUCHPRODUCT000000000000", staff, nil, http.StatusNotFound)
		if e.Status != "NOT_FOUND" {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("the request id travels", func(t *testing.T) {
		r := d.do(t, "GET", "/v1/registry/stats", "", nil)
		if id := r.header.Get("X-Request-Id"); id == "" || !strings.Contains(string(r.body), id) {
			t.Errorf("X-Request-Id %q not in the error body %s", id, r.body)
		}
	})
	t.Run("a stream refuses bad filters before it starts", func(t *testing.T) {
		e := d.failure(t, "GET", "/v1/matches:watch?start_time=2099-01-01T00:00:00Z", staff, nil, http.StatusBadRequest)
		if len(e.Violations) != 1 || e.Violations[0].Field != "start_time" {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("an oversized body", func(t *testing.T) {
		big := `{"nameZh": "` + strings.Repeat("碳", gateway.DefaultMaxBodyBytes/3+1) + `"}`
		e := d.failure(t, "POST", "/v1/institutions", staff, big, http.StatusRequestEntityTooLarge)
		if e.Status != "INVALID_ARGUMENT" {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("unknown path and method", func(t *testing.T) {
		d.failure(t, "GET", "/v1/nowhere", staff, nil, http.StatusNotFound)
		d.failure(t, "DELETE", "/v1/institutions", staff, nil, http.StatusMethodNotAllowed)
	})

	// Every REST path answers 401 without a token: each rule routes to the
	// desk, which refuses the call.
	t.Run("no token, no answer", func(t *testing.T) {
		var doc struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		r := d.do(t, "GET", "/openapi.json", "", nil)
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatal(err)
		}
		param := regexp.MustCompile(`\{[^}]+\}`)
		n := 0
		for path, methods := range doc.Paths {
			for method := range methods {
				n++
				p := param.ReplaceAllString(path, "01ID")
				e := d.failure(t, strings.ToUpper(method), p, "", nil, http.StatusUnauthorized)
				if e.Status != "UNAUTHENTICATED" {
					t.Errorf("%s %s: %+v", method, p, e)
				}
			}
		}
		if n < 50 {
			t.Errorf("only %d operations in /openapi.json", n)
		}
		bad := d.failure(t, "GET", "/v1/registry/stats", "not-a-jwt", nil, http.StatusUnauthorized)
		if strings.Contains(bad.Message, "not-a-jwt") {
			t.Errorf("the error echoes the token: %s", bad.Message)
		}
	})
}

// TestSite checks what the gateway serves besides the API: the OpenAPI
// description, the health check, the console with its security headers,
// and the development sign-in.
func TestSite(t *testing.T) {
	d := startDesk(t)

	t.Run("openapi", func(t *testing.T) {
		r := d.do(t, "GET", "/openapi.json", "", nil)
		var doc struct {
			Swagger string                     `json:"swagger"`
			Paths   map[string]json.RawMessage `json:"paths"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &doc) != nil || doc.Swagger != "2.0" {
			t.Fatalf("HTTP %d: %.200s", r.status, r.body)
		}
		for _, p := range []string{"/v1/institutions", "/v1/products/{id}:publish", "/v1/matches:watch",
			"/v1/demands/{demandId}/products/{productId}:explain", "/v1/talent/events/{eventId}/registrations", "/v1/talents/{talentId}/hours"} {
			if _, ok := doc.Paths[p]; !ok {
				t.Errorf("/openapi.json lacks %s", p)
			}
		}
	})
	t.Run("healthz", func(t *testing.T) {
		r := d.do(t, "GET", "/healthz", "", nil)
		var h struct {
			Status   string            `json:"status"`
			Upstream map[string]string `json:"upstream"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &h) != nil || h.Status != "SERVING" || h.Upstream["carbondesk.talent.v1.TalentService"] != "SERVING" {
			t.Errorf("HTTP %d: %s", r.status, r.body)
		}
	})
	t.Run("console", func(t *testing.T) {
		r := d.do(t, "GET", "/", "", nil)
		if r.status != http.StatusOK || !strings.Contains(strings.ToLower(string(r.body)), "<html") {
			t.Fatalf("GET /: HTTP %d: %.200s", r.status, r.body)
		}
		for h, want := range map[string]string{
			"Content-Security-Policy": gateway.ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		if csp := r.header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "http") {
			t.Errorf("CSP allows inline or remote sources: %s", csp)
		}
		d.failure(t, "POST", "/", "", "{}", http.StatusMethodNotAllowed)
	})
	t.Run("dev sign-in", func(t *testing.T) {
		r := d.do(t, "GET", "/api/dev/identities", "", nil)
		var ids struct {
			Identities []gateway.Identity `json:"identities"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &ids) != nil || len(ids.Identities) < 5 {
			t.Fatalf("HTTP %d: %s", r.status, r.body)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		for _, id := range ids.Identities {
			tok := devSignIn(t, d, id.ID)
			if tok.Role != id.Role || tok.Org != id.Org {
				t.Errorf("signed in as %s: got %+v", id.ID, tok)
			}
			// The token works, with the identity's role.
			r := d.do(t, "GET", "/v1/registry/stats", tok.Token, nil)
			if want := map[auth.Role]int{auth.Staff: 200, auth.Institution: 403, auth.Enterprise: 403}[id.Role]; r.status != want {
				t.Errorf("%s: GET /v1/registry/stats: HTTP %d, want %d: %s", id.ID, r.status, want, r.body)
			}
		}
		e := d.failure(t, "POST", "/api/dev/token", "", map[string]string{"identity": "mallory"}, http.StatusBadRequest)
		if len(e.Violations) != 1 || e.Violations[0].Field != "identity" || !strings.Contains(e.Violations[0].Description, "mallory") {
			t.Errorf("got %+v", e)
		}
		req, _ := http.NewRequest("POST", d.base+"/api/dev/token", strings.NewReader("identity=staff"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("a form post minted a token: HTTP %d", resp.StatusCode)
		}
	})
}
