package grpcx

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// probeService is a tiny hand-written service whose one method returns
// whatever error (or panic) the test asks for, to exercise the interceptors.
type probeService struct{ fn func() error }

func (p *probeService) call(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	in := &emptypb.Empty{}
	if err := dec(in); err != nil {
		return nil, err
	}
	h := func(ctx context.Context, req any) (any, error) {
		if err := p.fn(); err != nil {
			return nil, err
		}
		return &emptypb.Empty{}, nil
	}
	if ic == nil {
		return h(ctx, in)
	}
	return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Probe/Call"}, h)
}

func startProbe(t *testing.T, fn func() error) *grpc.ClientConn {
	t.Helper()
	p := &probeService{fn: fn}
	s := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Probe",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Call", Handler: p.call}},
	}, p)
	s.SetServing("", true)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(time.Second) })
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func invoke(cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cc.Invoke(ctx, "/test.Probe/Call", &emptypb.Empty{}, &emptypb.Empty{})
}

func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"ok", nil, codes.OK},
		{"not found", errs.NotFound("institution", "x"), codes.NotFound},
		{"wrapped not found", errors.Join(errors.New("ctx"), errs.NotFound("institution", "x")), codes.NotFound},
		{"store not found", store.ErrNotFound, codes.NotFound},
		{"exists", errs.AlreadyExists("code %s taken", "X"), codes.AlreadyExists},
		{"precondition", errs.FailedPrecondition("is REJECTED"), codes.FailedPrecondition},
		{"aborted", errs.Aborted("stale"), codes.Aborted},
		{"store conflict", &store.ConflictError{Kind: "k", ID: "i"}, codes.Aborted},
		{"store down", store.ErrUnavailable, codes.Unavailable},
		{"invalid", errs.Invalid("credit_code", "bad %q", "x"), codes.InvalidArgument},
		{"unexpected", errors.New("disk on fire"), codes.Internal},
		{"panic", nil, codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn := func() error { return tt.err }
			if tt.name == "panic" {
				fn = func() error { panic("boom") }
			}
			err := invoke(startProbe(t, fn))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v, want %v (err %v)", got, tt.want, err)
			}
			if tt.want == codes.Internal && status.Convert(err).Message() != "internal error" {
				t.Errorf("internal error leaks its cause: %q", status.Convert(err).Message())
			}
		})
	}
}

func TestFieldViolations(t *testing.T) {
	t.Parallel()
	var v errs.Violations
	v.Add("credit_code", "check character should be %q, found %q", "G", "H")
	v.Add("name_zh", "required")
	err := invoke(startProbe(t, v.Err))
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %v", st.Code())
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.FieldViolations {
				fields = append(fields, fv.Field)
			}
		}
	}
	if len(fields) != 2 || fields[0] != "credit_code" || fields[1] != "name_zh" {
		t.Fatalf("field violations = %v", fields)
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	cc := startProbe(t, func() error { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", resp, err)
	}
	rc, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range r.GetListServicesResponse().GetService() {
		if s.Name == "test.Probe" {
			found = true
		}
	}
	if !found {
		t.Fatalf("reflection does not list test.Probe: %v", r)
	}
}
