package matching

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// Headers standing in for a token in this test: the interceptors put the
// caller they name into the context, as auth's guard does.
const (
	roleHeader = "x-test-role"
	orgHeader  = "x-test-org"
)

func callerFrom(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if r := md.Get(roleHeader); len(r) > 0 {
		org := ""
		if o := md.Get(orgHeader); len(o) > 0 {
			org = o[0]
		}
		ctx = auth.WithCaller(ctx, auth.Caller{Subject: "test-" + r[0], Role: auth.Role(r[0]), Org: org})
	}
	return ctx
}

func testUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(callerFrom(ctx), req)
}

func testStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, grpcx.WrapStream(callerFrom(ss.Context()), ss))
}

func callAs(ctx context.Context, role auth.Role, org string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, roleHeader, string(role), orgHeader, org)
}

// TestComponent runs matching as production does: the Redis store, the
// outbox relay into a real embedded JetStream, the index fed from the
// CATALOG and REGISTRY streams, a real gRPC server with the platform's
// interceptors, driven through the generated client. WatchMatches sees the
// changes other RPCs make, filtered by access and by the request; a watch
// from a past start_time replays what happened before it; a watcher that
// does not read is cut off with RESOURCE_EXHAUSTED.
func TestComponent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	js := testenv.JetStream(t, testenv.NATS(t))
	testenv.Stream(t, js, Name)
	catalogHistory(t, js, 12)

	st := testenv.RedisStore(t)
	relay := outbox.New(st, js, log, outbox.Options{})
	relayCtx, stopRelay := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	t.Cleanup(func() {
		stopRelay()
		if err := <-relayDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("relay: %v", err)
		}
	})
	s := New(outbox.Notifying(st, relay), NewEngine(Config{}), WithLogger(log), WithConsumerConfig(fastConsumers),
		WithPolicy(Policy{WatchBuffer: 32, WatchGrace: 300 * time.Millisecond}))
	startRun(t, s, js)

	srv := grpcx.New(log, grpcx.Options{Unary: []grpc.UnaryServerInterceptor{testUnary}, Stream: []grpc.StreamServerInterceptor{testStream}})
	s.Register(srv.Server)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop(5 * time.Second)
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	})
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	client := matchingv1.NewMatchingServiceClient(cc)

	// A first demand, before anyone watches.
	before := time.Now().Add(-time.Second)
	ent := testCode(t)
	entCtx := callAs(ctx, auth.Enterprise, ent)
	d1, err := client.PostDemand(entCtx, &matchingv1.PostDemandRequest{Demand: liveDemand(ent)})
	if err != nil {
		t.Fatalf("PostDemand: %v", err)
	}
	if len(d1.GetMatches()) != 5 {
		t.Fatalf("%d matches, want 5", len(d1.GetMatches()))
	}
	inst := d1.GetMatches()[0].GetInstitutionCreditCode()
	// The first demand's events are in the stream before anyone watches
	// "from now" (the relay publishes after the commit).
	if err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Watchers: staff for everything; the first match's institution for
	// ACCEPTED of its own; staff replaying from before the first demand;
	// staff filtering on a sector no demand has.
	watch := func(wctx context.Context, req *matchingv1.WatchMatchesRequest) grpc.ServerStreamingClient[matchingv1.WatchMatchesResponse] {
		t.Helper()
		w, err := client.WatchMatches(wctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := w.Header(); err != nil || len(h.Get(WatchReadyHeader)) == 0 {
			t.Fatalf("watch not ready: %v %v", h, err)
		}
		return w
	}
	staff := callAs(ctx, auth.Staff, "")
	all := watch(staff, &matchingv1.WatchMatchesRequest{})
	mine := watch(callAs(ctx, auth.Institution, inst), &matchingv1.WatchMatchesRequest{States: []matchingv1.MatchState{matchAccepted}})
	replay := watch(staff, &matchingv1.WatchMatchesRequest{StartTime: timestamppb.New(before), States: []matchingv1.MatchState{matchProposed}})
	none := watch(staff, &matchingv1.WatchMatchesRequest{Sectors: []catalogv1.Sector{catalogv1.Sector_SECTOR_AVIATION}})
	slowCtx, stopSlow := context.WithCancel(staff)
	defer stopSlow()
	// The slow watcher's connection takes no more than gRPC's fixed 64 KiB
	// window (no dynamic window growth) while its reader sleeps, as a stuck
	// console over a slow link would.
	slowConn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slowConn.Close() })
	slow, err := matchingv1.NewMatchingServiceClient(slowConn).WatchMatches(slowCtx, &matchingv1.WatchMatchesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Header(); err != nil {
		t.Fatal(err)
	}

	// Changes through other RPCs.
	ms := d1.GetMatches()
	if _, err := client.AcceptMatch(callAs(ctx, auth.Institution, inst), &matchingv1.AcceptMatchRequest{Id: ms[0].GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AcceptMatch(callAs(ctx, auth.Institution, ms[1].GetInstitutionCreditCode()), &matchingv1.AcceptMatchRequest{Id: ms[1].GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = client.AcceptMatch(callAs(ctx, auth.Institution, inst), &matchingv1.AcceptMatchRequest{Id: ms[2].GetId()})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("accepting another institution's match: %v, want NotFound", err)
	}
	if _, err := client.ConfirmMatch(entCtx, &matchingv1.ConfirmMatchRequest{Id: ms[0].GetId()}); err != nil {
		t.Fatal(err)
	}

	recv := func(w grpc.ServerStreamingClient[matchingv1.WatchMatchesResponse]) *matchingv1.WatchMatchesResponse {
		t.Helper()
		r, err := w.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		return r
	}
	// Staff see: ms[0] accepted, ms[1] accepted, ms[0] confirmed, then the
	// others closed (in the confirm's batch order).
	want := []struct {
		id    string
		state matchingv1.MatchState
	}{{ms[0].GetId(), matchAccepted}, {ms[1].GetId(), matchAccepted}}
	for _, w := range want {
		r := recv(all)
		if r.GetMatch().GetId() != w.id || r.GetMatch().GetState() != w.state || r.GetEventType() != "matching.match.accepted" {
			t.Fatalf("staff watch got %s %s (%s), want %s %s", r.GetMatch().GetId(), r.GetMatch().GetState(), r.GetEventType(), w.id, w.state)
		}
	}
	seenConfirm := false
	for range 4 {
		if r := recv(all); r.GetMatch().GetState() == matchConfirmed {
			seenConfirm = true
		}
	}
	if !seenConfirm {
		t.Error("staff watch did not see the confirmation")
	}
	// The institution sees its own acceptance only.
	if r := recv(mine); r.GetMatch().GetId() != ms[0].GetId() || r.GetMatch().GetState() != matchAccepted {
		t.Fatalf("institution watch got %v", r.GetMatch())
	}
	// The replay starts with the first demand's proposals.
	for i := range 5 {
		if r := recv(replay); r.GetMatch().GetId() != ms[i].GetId() || r.GetMatch().GetState() != matchProposed {
			t.Fatalf("replay %d: got %s %s, want %s PROPOSED", i, r.GetMatch().GetId(), r.GetMatch().GetState(), ms[i].GetId())
		}
	}

	// Many more changes: the slow watcher (reading nothing) is cut off;
	// the staff watcher keeps up.
	// The staff watcher reads as the changes come, as a console would.
	kept := make(chan error, 1)
	go func() {
		for range 100 * 5 {
			if _, err := all.Recv(); err != nil {
				kept <- err
				return
			}
		}
		kept <- nil
	}()
	for range 100 {
		code := testCode(t)
		if _, err := client.PostDemand(callAs(ctx, auth.Enterprise, code), &matchingv1.PostDemandRequest{Demand: liveDemand(code)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-kept; err != nil {
		t.Fatalf("the staff watcher that keeps up was cut off: %v", err)
	}
	var slowErr error
	// It has read nothing for longer than the grace: cut off.
	time.Sleep(3 * 300 * time.Millisecond)
	slowGot := 0
	for slowErr == nil {
		_, slowErr = slow.Recv()
		slowGot++
	}
	t.Logf("the slow watcher got %d changes (those queued before the cut) and then the cut", slowGot)
	if status.Code(slowErr) != codes.ResourceExhausted {
		t.Fatalf("slow watcher ended with %v, want ResourceExhausted", slowErr)
	}
	t.Logf("slow watcher: %v", slowErr)

	// The watcher filtering on a sector no demand has got nothing.
	got := make(chan *matchingv1.WatchMatchesResponse, 1)
	go func() {
		if r, err := none.Recv(); err == nil {
			got <- r
		}
	}()
	select {
	case r := <-got:
		t.Fatalf("the AVIATION watcher got a %s match", r.GetMatch().GetSector())
	case <-time.After(300 * time.Millisecond):
	}
}

// liveDemand is demand due 30 days from the real clock.
func liveDemand(code string) *matchingv1.Demand {
	d := demand(code)
	d.Deadline = timestamppb.New(time.Now().Add(30 * 24 * time.Hour))
	return d
}
