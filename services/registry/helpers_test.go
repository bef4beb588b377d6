package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// t0 is the tests' clock start.
var t0 = time.Date(2026, 4, 2, 9, 30, 0, 0, time.UTC)

// clock is a test clock that moves one second per reading, so every change
// has its own time and no test sleeps.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// newTestServer is a registry over st with a test clock.
func newTestServer(t *testing.T, st store.Store) (*Server, *clock) {
	t.Helper()
	c := &clock{now: t0}
	return New(st, WithClock(c.Now)), c
}

// staff is the actor of the tests' review calls.
var staff = events.Actor{Subject: "staff-ma", Role: "staff"}

func staffCtx(t *testing.T) context.Context {
	return events.WithActor(t.Context(), staff)
}

var codeSeq atomic.Int64

// testCode returns a fresh valid Wuchang credit code.
func testCode(t testing.TB) string {
	t.Helper()
	code, err := CompleteCreditCode(fmt.Sprintf("91420106T%08d", codeSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// validRequest is a registration that passes validation.
func validRequest(t testing.TB) *registryv1.RegisterInstitutionRequest {
	return &registryv1.RegisterInstitutionRequest{
		CreditCode: testCode(t),
		NameZh:     "楚江碳金融银行武昌分行",
		NameEn:     "Chujiang Carbon Finance Bank, Wuchang Branch",
		Kind:       registryv1.InstitutionKind_INSTITUTION_KIND_BANK,
		Tier:       registryv1.Tier_TIER_BRANCH,
		Zone:       registryv1.Zone_ZONE_FINANCE_AXIS,
		Address:    "武汉市武昌区中南路 88 号",
		Contact:    &registryv1.Contact{Name: "王晓岚", Phone: "027-8765 4321", Email: "desk@chujiang.example"},
		Licences:   []*registryv1.Licence{{Name: "金融许可证", Number: "DEMO-B-0001", Issuer: "国家金融监督管理总局湖北监管局"}},
	}
}

// register registers a valid institution and fails the test on error.
func register(t *testing.T, s *Server, req *registryv1.RegisterInstitutionRequest) *registryv1.Institution {
	t.Helper()
	resp, err := s.RegisterInstitution(staffCtx(t), req)
	if err != nil {
		t.Fatalf("RegisterInstitution: %v", err)
	}
	return resp.GetInstitution()
}

// reviewTo registers an institution and reviews it into state.
func reviewTo(t *testing.T, s *Server, state State) *registryv1.Institution {
	t.Helper()
	in := register(t, s, validRequest(t))
	for _, a := range seedPaths[state] {
		got, err := s.review(staffCtx(t), a, in.GetId(), "to reach "+state.String(), 0)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		in = got
	}
	return in
}

// code is the gRPC code err maps to, through the one mapping the server
// interceptor uses.
func code(err error) codes.Code {
	st, _ := errs.Status(err)
	return st.Code()
}

// message is the status message err maps to.
func message(err error) string {
	st, _ := errs.Status(err)
	return st.Message()
}

// violationFields lists the fields of an InvalidError, or nil.
func violationFields(err error) []string {
	var inv *errs.InvalidError
	if !errors.As(err, &inv) {
		return nil
	}
	var fields []string
	for _, v := range inv.Violations {
		fields = append(fields, v.Field)
	}
	return fields
}

// pending reads the store's outbox as (subject, entity id, version) triples.
func pending(t *testing.T, st store.Store) []string {
	t.Helper()
	ps, err := st.Pending(t.Context(), store.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		env, err := events.Decode(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s v%d", p.Subject, env.GetEntityId(), env.GetEntityVersion()))
	}
	return out
}
