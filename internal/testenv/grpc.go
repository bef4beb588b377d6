package testenv

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/grpcx"
)

// ServeGRPC serves srv on a loopback port and returns a client connection
// to it (plaintext). When the test ends the connection is closed and the
// server stopped; a Serve error other than the stop fails the test.
func ServeGRPC(tb testing.TB, srv *grpcx.Server) *grpc.ClientConn {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		srv.Stop(5 * time.Second)
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("testenv: serve: %v", err)
		}
	})
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatalf("testenv: client for %s: %v", lis.Addr(), err)
	}
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Headers standing in for a verified token: AsCaller sets them on a
// client's call, CallerInterceptor turns them into the caller.
const (
	RoleHeader = "x-test-role"
	OrgHeader  = "x-test-org"
)

// AsCaller is ctx for a client call made as a caller of role in the
// organisation with credit code org ("" for none), for a server with
// CallerInterceptor.
func AsCaller(ctx context.Context, role auth.Role, org string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, RoleHeader, string(role), OrgHeader, org)
}

// CallerInterceptor puts into a call's context the caller that AsCaller's
// headers name (subject "test-<role>"), as auth's guard does for a
// verified token; a call without them has no caller.
func CallerInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(RoleHeader)) > 0 {
		c := auth.Caller{Subject: "test-" + md.Get(RoleHeader)[0], Role: auth.Role(md.Get(RoleHeader)[0])}
		if orgs := md.Get(OrgHeader); len(orgs) > 0 {
			c.Org = orgs[0]
		}
		ctx = auth.WithCaller(ctx, c)
	}
	return handler(ctx, req)
}

// WantStatus fails the test unless err is a status of code c with message
// msg.
func WantStatus(tb testing.TB, err error, c codes.Code, msg string) {
	tb.Helper()
	st, _ := status.FromError(err)
	if st.Code() != c || st.Message() != msg {
		tb.Errorf("status %v %q, want %v %q", st.Code(), st.Message(), c, msg)
	}
}

// FieldViolations are the fields a status's BadRequest details name, in
// order.
func FieldViolations(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField())
			}
		}
	}
	return fields
}

// Wire returns req as a server would receive it: marshalled by a client
// and unmarshalled by gRPC. What cannot cross the wire (a proto3 string
// that is not UTF-8) never reaches a handler, so the test is skipped: for
// fuzz targets that build requests from arbitrary input.
func Wire[M proto.Message](tb testing.TB, req M) M {
	tb.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		tb.Skipf("not sendable: %v", err)
	}
	out := req.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		tb.Fatalf("a marshalled request does not unmarshal: %v", err)
	}
	return out
}
