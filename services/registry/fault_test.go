package registry

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/store/redisstore"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestRedisAway stops the registry's Redis under it: calls answer
// Unavailable well inside their deadline, a registration that failed leaves
// nothing behind (its credit code is free afterwards), and once Redis is back
// the same server answers again without a restart.
func TestRedisAway(t *testing.T) {
	t.Parallel()
	// A private redis-server that keeps its data across the stop (AOF with
	// fsync on every write, as production runs it).
	rp := testenv.RedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb, err := redisstore.NewClient(rp.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	log := slog.New(slog.DiscardHandler)
	srv := grpcx.New(log, grpcx.Options{})
	New(redisstore.New(rdb, "carbondesk:{registry}"), WithLogger(log)).Register(srv.Server)
	client := registryv1.NewRegistryServiceClient(testenv.ServeGRPC(t, srv))

	call := func(deadline time.Duration, fn func(ctx context.Context) error) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		start := time.Now()
		err := fn(ctx)
		return time.Since(start), err
	}
	before, err := client.RegisterInstitution(t.Context(), validRequest(t))
	if err != nil {
		t.Fatalf("register before the outage: %v", err)
	}

	rp.Stop()
	failed := validRequest(t)
	const deadline = 3 * time.Second
	calls := map[string]func(ctx context.Context) error{
		"RegisterInstitution": func(ctx context.Context) error {
			_, err := client.RegisterInstitution(ctx, failed)
			return err
		},
		"GetInstitution": func(ctx context.Context) error {
			_, err := client.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: before.GetInstitution().GetId()})
			return err
		},
		"ListInstitutions": func(ctx context.Context) error {
			_, err := client.ListInstitutions(ctx, &registryv1.ListInstitutionsRequest{})
			return err
		},
		"ApproveInstitution": func(ctx context.Context) error {
			_, err := client.ApproveInstitution(ctx, &registryv1.ApproveInstitutionRequest{Id: before.GetInstitution().GetId(), Reason: "ok"})
			return err
		},
	}
	for name, fn := range calls {
		took, err := call(deadline, fn)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s with Redis away: %v, want Unavailable", name, err)
		}
		if took > deadline/2 {
			t.Errorf("%s took %s to fail; want well inside the %s deadline", name, took, deadline)
		}
		t.Logf("%s failed in %s: %v", name, took.Round(time.Millisecond), err)
	}

	rp.Start()
	testenv.Eventually(t, 15*time.Second, func() bool {
		_, err := call(deadline, func(ctx context.Context) error {
			_, err := client.GetInstitution(ctx, &registryv1.GetInstitutionRequest{Id: before.GetInstitution().GetId()})
			return err
		})
		return err == nil
	})
	// The failed registration wrote nothing: its code is free, and the
	// register holds exactly the one institution from before.
	if _, err := client.RegisterInstitution(t.Context(), failed); err != nil {
		t.Fatalf("registering the code whose registration failed during the outage: %v", err)
	}
	list, err := client.ListInstitutions(t.Context(), &registryv1.ListInstitutionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetInstitutions()); n != 2 {
		t.Fatalf("after recovery %d institutions, want 2", n)
	}
	got, err := client.GetInstitution(t.Context(), &registryv1.GetInstitutionRequest{Id: before.GetInstitution().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetInstitution().GetState() != registryv1.InstitutionState_INSTITUTION_STATE_PENDING {
		t.Fatalf("the approval that failed during the outage was applied: state %v", got.GetInstitution().GetState())
	}
}
