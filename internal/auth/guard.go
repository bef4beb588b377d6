package auth

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/carbondesk/carbondesk/internal/errs"
)

// publicPrefixes are the services callable without a token: load balancers
// and orchestrators probe health, and tools discover the API by reflection.
var publicPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// IsPublic reports whether a method needs no token.
func IsPublic(method string) bool {
	for _, p := range publicPrefixes {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}

// Limits bounds what one caller may do.
type Limits struct {
	// WritesPerSecond and WriteBurst form a token bucket per caller
	// (subject and organisation) over the RPCs the table marks Write.
	WritesPerSecond float64
	WriteBurst      int
}

// DefaultLimits suit people at a desk and scripted seeding alike.
func DefaultLimits() Limits { return Limits{WritesPerSecond: 50, WriteBurst: 100} }

// Guard is the authentication and authorization interceptor pair.
type Guard struct {
	verifier Verifier
	table    map[string]Rule
	limits   Limits
	log      *slog.Logger

	mu        sync.Mutex
	limiters  map[string]*callerLimiter
	lastSweep time.Time

	// verified caches tokens already verified, until they expire: an
	// Ed25519 verification costs ~70 µs, a map lookup nothing, and a
	// console sends the same token for hours.
	vmu      sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	caller  Caller
	expires time.Time
}

// maxVerified bounds the cache; past it the cache starts afresh.
const maxVerified = 10000

type callerLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewGuard builds the interceptors over a verifier and the table.
func NewGuard(v Verifier, table map[string]Rule, limits Limits, log *slog.Logger) *Guard {
	return &Guard{verifier: v, table: table, limits: limits, log: log, limiters: map[string]*callerLimiter{}, verified: map[string]verifiedToken{}}
}

// Unary authenticates and authorizes unary calls.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream authenticates and authorizes streaming calls.
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := g.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &callerStream{ServerStream: ss, ctx: ctx})
	}
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

func (g *Guard) authorize(ctx context.Context, method string) (context.Context, error) {
	if IsPublic(method) {
		return ctx, nil
	}
	c, err := g.verify(bearer(ctx))
	if err != nil {
		return ctx, err
	}
	rule, ok := g.table[method]
	if !ok {
		// Deny by default: a method without a rule is a bug, not an opening.
		g.log.ErrorContext(ctx, "rpc has no entry in the authorization table; refused", "method", method)
		return ctx, errs.PermissionDenied("%s is not open to any caller", method)
	}
	if !rule.Allows(c.Role) {
		return ctx, errs.PermissionDenied("role %s may not call %s", c.Role, shortMethod(method))
	}
	if rule.Write && !g.allowWrite(c) {
		return ctx, errs.ResourceExhausted("too many writes from %s: at most %.0f per second (bursts of %d); slow down and retry",
			c.Subject, g.limits.WritesPerSecond, g.limits.WriteBurst)
	}
	return WithCaller(ctx, c), nil
}

// verify checks a token, or finds it verified already and not expired.
func (g *Guard) verify(token string) (Caller, error) {
	now := time.Now()
	g.vmu.Lock()
	v, ok := g.verified[token]
	g.vmu.Unlock()
	if ok && now.Before(v.expires) {
		return v.caller, nil
	}
	c, claims, err := g.verifier.check(token)
	if err != nil {
		return Caller{}, err
	}
	g.vmu.Lock()
	if len(g.verified) >= maxVerified {
		clear(g.verified)
	}
	g.verified[token] = verifiedToken{caller: c, expires: claims.ExpiresAt.Time}
	g.vmu.Unlock()
	return c, nil
}

func (g *Guard) allowWrite(c Caller) bool {
	if g.limits.WritesPerSecond <= 0 {
		return true
	}
	key := string(c.Role) + "|" + c.Org + "|" + c.Subject
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.limiters[key]
	if !ok {
		// Forget callers idle for a while (their bucket is full again by
		// then) so the map holds only recent callers.
		if len(g.limiters) >= 1000 && now.Sub(g.lastSweep) > time.Minute {
			g.lastSweep = now
			for k, v := range g.limiters {
				if now.Sub(v.seen) > 10*time.Minute {
					delete(g.limiters, k)
				}
			}
		}
		l = &callerLimiter{lim: rate.NewLimiter(rate.Limit(g.limits.WritesPerSecond), max(g.limits.WriteBurst, 1))}
		g.limiters[key] = l
	}
	l.seen = now
	return l.lim.AllowN(now, 1)
}

// bearer extracts the token from the authorization header.
func bearer(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	for _, v := range md.Get("authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
	}
	return ""
}

func shortMethod(m string) string {
	if i := strings.LastIndex(m, "/"); i >= 0 {
		return m[i+1:]
	}
	return m
}
