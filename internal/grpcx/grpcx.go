// Package grpcx sets up the gRPC server every CarbonDesk service runs on:
// grpc.health.v1 health, server reflection, request logging with log/slog,
// panic recovery into Internal, the single mapping from domain errors to
// status codes (errs.Status), a bounded message size, and a graceful stop
// with a deadline. Services only register their handlers on it.
package grpcx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/carbondesk/carbondesk/internal/errs"
)

// MaxMessageBytes bounds a request so one caller cannot make the server
// allocate without limit.
const MaxMessageBytes = 4 << 20

// DefaultCallTimeout bounds a unary call whose client set no deadline, so
// no handler runs without limit.
const DefaultCallTimeout = 30 * time.Second

// RequestIDHeader is the metadata key a caller may set to correlate logs;
// when absent the server makes one, and returns it in the response header.
const RequestIDHeader = "x-request-id"

// Options tunes a server.
type Options struct {
	// Unary and Stream interceptors run after logging, error mapping and
	// recovery (authentication goes here).
	Unary  []grpc.UnaryServerInterceptor
	Stream []grpc.StreamServerInterceptor
	// ServerOptions are passed to grpc.NewServer as they are.
	ServerOptions []grpc.ServerOption
	// Observe, when set, is told of every finished call: its method, status
	// code and duration (the process's RPC metrics).
	Observe func(method string, code codes.Code, d time.Duration)
}

// Server is a gRPC server with health and reflection registered.
type Server struct {
	*grpc.Server
	Health *health.Server
	log    *slog.Logger
}

// New builds the server. Register services on it, then Serve.
func New(log *slog.Logger, o Options) *Server {
	unary := append([]grpc.UnaryServerInterceptor{logUnary(log, o.Observe), recoverUnary(log)}, o.Unary...)
	stream := append([]grpc.StreamServerInterceptor{logStream(log, o.Observe), recoverStream(log)}, o.Stream...)
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.ForceServerCodecV2(NewCodec()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, o.ServerOptions...)
	s := &Server{Server: grpc.NewServer(opts...), Health: health.NewServer(), log: log}
	healthpb.RegisterHealthServer(s.Server, s.Health)
	reflection.Register(s.Server)
	return s
}

// SetServing marks a service (and the server as a whole, "") as serving or not.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus(service, st)
}

// Stop stops the server gracefully, waiting at most timeout for open calls
// and streams (a WatchMatches stream never ends by itself), then hard-stops.
func (s *Server) Stop(timeout time.Duration) {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		s.log.Warn("graceful stop timed out; closing open calls", "timeout", timeout)
		s.Server.Stop()
		<-done
	}
}

// toStatus maps a handler error through errs.Status and logs the cause of
// unexpected ones, which the caller never sees.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	st, expected := errs.Status(err)
	if !expected {
		log.ErrorContext(ctx, "internal error", "method", method, "request_id", requestID(ctx), "err", err)
	}
	return st.Err()
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// RequestID returns the id of the request being served, for logs.
func RequestID(ctx context.Context) string { return requestID(ctx) }

func withRequestID(ctx context.Context) (context.Context, string) {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && len(v[0]) > 0 && len(v[0]) <= 64 {
			id = v[0]
		}
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDHeader, id))
	return context.WithValue(ctx, requestIDKey{}, id), id
}

func logUnary(log *slog.Logger, observe func(string, codes.Code, time.Duration)) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, id := withRequestID(ctx)
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
			defer cancel()
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		err = toStatus(ctx, log, info.FullMethod, err)
		logCall(ctx, log, info.FullMethod, id, start, err)
		if observe != nil {
			observe(info.FullMethod, status.Code(err), time.Since(start))
		}
		return resp, err
	}
}

func logStream(log *slog.Logger, observe func(string, codes.Code, time.Duration)) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, id := withRequestID(ss.Context())
		start := time.Now()
		err := handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
		err = toStatus(ctx, log, info.FullMethod, err)
		logCall(ctx, log, info.FullMethod, id, start, err)
		if observe != nil {
			observe(info.FullMethod, status.Code(err), time.Since(start))
		}
		return err
	}
}

func logCall(ctx context.Context, log *slog.Logger, method, id string, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch code {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition,
		codes.Aborted, codes.Canceled, codes.Unauthenticated, codes.PermissionDenied:
	default:
		level = slog.LevelWarn
	}
	if method == healthpb.Health_Check_FullMethodName || method == healthpb.Health_Watch_FullMethodName {
		level = slog.LevelDebug
	}
	log.Log(ctx, level, "rpc", "method", method, "code", code.String(), "request_id", id,
		"duration_ms", float64(time.Since(start).Microseconds())/1000)
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "request_id", requestID(ctx),
					"panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.ErrorContext(ss.Context(), "panic in stream handler", "method", info.FullMethod,
					"request_id", requestID(ss.Context()), "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}

// wrappedStream carries a derived context into stream handlers.
type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// WrapStream returns ss with ctx as its context, for stream interceptors
// that add values (the caller's identity).
func WrapStream(ctx context.Context, ss grpc.ServerStream) grpc.ServerStream {
	return &wrappedStream{ServerStream: ss, ctx: ctx}
}
