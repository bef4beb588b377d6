package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/seeds"
	"github.com/carbondesk/carbondesk/services/gateway"
)

// startGateway serves the REST/JSON gateway and the console on
// cfg.HTTPAddr, forwarding to the process's own gRPC listener at grpcAddr.
// In development mode it also offers the sign-in with demo identities,
// minting their tokens with the data folder's key. With the process's
// metrics m, its requests are counted and timed on m's registry (served at
// --metrics). It returns the address bound and the stop step, which ends
// open streams and then the server.
func startGateway(ctx context.Context, cfg Config, log *slog.Logger, grpcAddr net.Addr, devMode bool, g *errgroup.Group, m *metrics) (string, func(), error) {
	log = log.With("component", "gateway")
	opts := gateway.Options{Log: log}
	if m != nil {
		opts.Metrics = m.httpMetrics()
	}
	if devMode {
		key, _, err := auth.LoadOrCreateDevKey(cfg.DataDir)
		if err != nil {
			return "", nil, fmt.Errorf("development sign-in: %w", err)
		}
		ids, err := gateway.SeedIdentities(seeds.FS)
		if err != nil {
			return "", nil, err
		}
		opts.DevSignIn = &gateway.DevSignIn{
			Issuer:     auth.Issuer{Key: key, Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience},
			Identities: ids,
		}
	}
	conn, err := gateway.Dial(dialAddr(grpcAddr))
	if err != nil {
		return "", nil, err
	}
	gw, err := gateway.New(ctx, conn, opts)
	if err != nil {
		_ = conn.Close()
		return "", nil, err
	}
	lis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = conn.Close()
		return "", nil, fmt.Errorf("listen on %s (--http): %w", cfg.HTTPAddr, err)
	}
	if devMode && !isLoopback(lis.Addr()) {
		log.Warn("development sign-in is served beyond this machine: anyone who reaches --http can sign in as staff; give --token-public-keys, or listen on 127.0.0.1",
			"http", lis.Addr().String())
	}
	srv := gateway.NewServer(gw, log)
	g.Go(func() error { return srv.Serve(lis) })
	stop := func() {
		srv.Stop(cfg.ShutdownTimeout / 2)
		_ = conn.Close()
	}
	return lis.Addr().String(), stop, nil
}

// dialAddr is where to reach a listener bound to addr from the same host:
// a wildcard address is reached on loopback.
func dialAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
