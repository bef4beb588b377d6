package registry

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// actorHeader stands in for authentication in this test: the interceptor
// below puts the caller it names into the context, as the real auth
// interceptor will.
const actorHeader = "x-test-actor"

func testActor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(actorHeader)) > 0 {
		ctx = events.WithActor(ctx, events.Actor{Subject: md.Get(actorHeader)[0], Role: "staff"})
	}
	return handler(ctx, req)
}

// TestComponent starts the registry as production runs it, on a real gRPC
// server with the platform's interceptors, the Redis store, an embedded
// NATS JetStream and the outbox relay, and drives it through the generated
// client: each change comes back from the REGISTRY stream as its event, and
// domain errors arrive with their status codes.
func TestComponent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	// NATS, the stream and the relay.
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, Name)
	st := testenv.RedisStore(t)
	relay := outbox.New(st, js, log, outbox.Options{})
	testenv.Background(t, "relay", relay.Run)

	// The service on a real server.
	srv := grpcx.New(log, grpcx.Options{Unary: []grpc.UnaryServerInterceptor{testActor}})
	New(outbox.Notifying(st, relay), WithLogger(log)).Register(srv.Server)
	client := registryv1.NewRegistryServiceClient(testenv.ServeGRPC(t, srv))
	ctx = metadata.AppendToOutgoingContext(ctx, actorHeader, "staff-zhou")

	// Every change, through the client.
	req := validRequest(t)
	a, err := client.RegisterInstitution(ctx, req)
	if err != nil {
		t.Fatalf("RegisterInstitution: %v", err)
	}
	id := a.GetInstitution().GetId()
	steps := []func() (*registryv1.Institution, error){
		func() (*registryv1.Institution, error) {
			r, err := client.UpdateInstitution(ctx, &registryv1.UpdateInstitutionRequest{Id: id, Version: 1, Institution: &registryv1.Institution{Address: "武汉市武昌区中北路 126 号"}})
			return r.GetInstitution(), err
		},
		func() (*registryv1.Institution, error) {
			r, err := client.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: id, Reason: "licences checked", Version: 2})
			return r.GetInstitution(), err
		},
		func() (*registryv1.Institution, error) {
			r, err := client.SuspendInstitution(ctx, &registryv1.SuspendInstitutionRequest{Id: id, Reason: "annual report overdue"})
			return r.GetInstitution(), err
		},
		func() (*registryv1.Institution, error) {
			r, err := client.ReinstateInstitution(ctx, &registryv1.ReinstateInstitutionRequest{Id: id, Reason: "report filed"})
			return r.GetInstitution(), err
		},
	}
	for i, step := range steps {
		if _, err := step(); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
	b, err := client.RegisterInstitution(ctx, validRequest(t))
	if err != nil {
		t.Fatalf("RegisterInstitution: %v", err)
	}
	if _, err := client.RejectInstitution(ctx, &registryv1.RejectInstitutionRequest{Id: b.GetInstitution().GetId(), Reason: "no licence shown"}); err != nil {
		t.Fatalf("RejectInstitution: %v", err)
	}

	// Errors keep their codes and field violations over the wire.
	_, err = client.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: b.GetInstitution().GetId(), Reason: "second thoughts"})
	testenv.WantStatus(t, err, codes.FailedPrecondition, "institution "+b.GetInstitution().GetId()+" is REJECTED; only PENDING institutions can be approved")
	_, err = client.UpdateInstitution(ctx, &registryv1.UpdateInstitutionRequest{Id: id, Version: 1, Institution: &registryv1.Institution{NameEn: "Late"}})
	testenv.WantStatus(t, err, codes.Aborted, "version 1 is stale; the institution is at version 5; read it again")
	_, err = client.RegisterInstitution(ctx, req)
	testenv.WantStatus(t, err, codes.AlreadyExists, "an institution with credit code "+req.GetCreditCode()+" is already registered (id "+id+")")
	_, err = client.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: "01JNOSUCH"})
	testenv.WantStatus(t, err, codes.NotFound, `institution "01JNOSUCH" not found`)
	bad := validRequest(t)
	bad.CreditCode, bad.Contact.Email = "91420106MA4K00010H", "nobody"
	_, err = client.RegisterInstitution(ctx, bad)
	if got := testenv.FieldViolations(err); !cmp.Equal(got, []string{"credit_code", "contact.email"}) {
		t.Errorf("register with a bad code and email: %v; fields %v", err, got)
	}

	// The REGISTRY stream holds each change's event, in order.
	type event struct {
		Subject, Type, Entity, Actor string
		Version                      int64
		State                        registryv1.InstitutionState
		Address                      string
	}
	want := []event{
		{SubjectRegistered, "registry.institution.registered", id, "staff-zhou", 1, registryv1.InstitutionState_INSTITUTION_STATE_PENDING, req.GetAddress()},
		{SubjectUpdated, "registry.institution.updated", id, "staff-zhou", 2, registryv1.InstitutionState_INSTITUTION_STATE_PENDING, "武汉市武昌区中北路 126 号"},
		{SubjectApproved, "registry.institution.approved", id, "staff-zhou", 3, registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE, "武汉市武昌区中北路 126 号"},
		{SubjectSuspended, "registry.institution.suspended", id, "staff-zhou", 4, registryv1.InstitutionState_INSTITUTION_STATE_SUSPENDED, "武汉市武昌区中北路 126 号"},
		{SubjectReinstated, "registry.institution.reinstated", id, "staff-zhou", 5, registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE, "武汉市武昌区中北路 126 号"},
		{SubjectRegistered, "registry.institution.registered", b.GetInstitution().GetId(), "staff-zhou", 1, registryv1.InstitutionState_INSTITUTION_STATE_PENDING, req.GetAddress()},
		{SubjectRejected, "registry.institution.rejected", b.GetInstitution().GetId(), "staff-zhou", 2, registryv1.InstitutionState_INSTITUTION_STATE_REJECTED, req.GetAddress()},
	}
	stream := events.StreamName(Name)
	testenv.Eventually(t, 10*time.Second, func() bool { return len(testenv.StreamMessages(t, js, stream)) >= len(want) })
	var got []event
	for _, m := range testenv.StreamMessages(t, js, stream) {
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Nats-Msg-Id") != env.GetId() {
			t.Errorf("message id header %q, envelope id %q", m.Header.Get("Nats-Msg-Id"), env.GetId())
		}
		in := &registryv1.Institution{}
		if err := env.GetPayload().UnmarshalTo(in); err != nil {
			t.Fatalf("payload of %s: %v", m.Subject, err)
		}
		if in.GetId() != env.GetEntityId() || in.GetVersion() != env.GetEntityVersion() {
			t.Errorf("%s: payload is %s v%d, envelope %s v%d", m.Subject, in.GetId(), in.GetVersion(), env.GetEntityId(), env.GetEntityVersion())
		}
		got = append(got, event{m.Subject, env.GetType(), env.GetEntityId(), env.GetActor().GetSubject(), env.GetEntityVersion(), in.GetState(), in.GetAddress()})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("REGISTRY stream (-want +got):\n%s", diff)
	}
}
