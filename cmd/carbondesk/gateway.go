package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/services/catalog"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
	"github.com/carbondesk/carbondesk/services/talent"

	"github.com/carbondesk/carbondesk/services/gateway"
)

// newGatewayCmd runs the gateway alone, in front of a desk's gRPC listener
// elsewhere. It offers no development sign-in: it holds no signing key.
func newGatewayCmd() *cobra.Command {
	var (
		upstreams []string
		httpAddr  string
		metrics   string
		shutdown  time.Duration
		logFormat string
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run only the REST/JSON gateway and web console, in front of a carbondesk gRPC listener",
		Long: `Runs the REST/JSON gateway and web console alone, forwarding every call to
the gRPC listener at --upstream with the caller's bearer token. The single
binary (carbondesk with no subcommand) runs the same gateway on --http itself.
With one service per process, give each its own upstream: --upstream
registry=host:port (and catalog=, matching=, talent=); a plain host:port serves
every service not named. 'carbondesk gateway' and 'carbondesk serve gateway'
are the same command.`,
		Example: `  carbondesk gateway --upstream carbondesk:7070 --http 0.0.0.0:8080
  carbondesk serve gateway --upstream registry=registry:7070 --upstream catalog=catalog:7070 \
    --upstream matching=matching:7070 --upstream talent=talent:7070 --http 0.0.0.0:8080 --metrics 0.0.0.0:9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			conn, byService, err := dialUpstreams(upstreams)
			if err != nil {
				return err
			}
			defer conn.Close()
			for _, c := range byService {
				defer c.Close()
			}
			g, _ := errgroup.WithContext(ctx)
			metricsLine := ""
			opts := gateway.Options{Log: log, Upstreams: byService}
			if metrics != "" {
				reg := app.NewProcessMetrics()
				opts.Metrics = gateway.NewHTTPMetrics(reg)
				addr, stopMetrics, err := app.ServeMetrics(metrics, reg, log, g)
				if err != nil {
					return err
				}
				defer stopMetrics()
				metricsLine = "  metrics  http://" + addr + "/metrics\n"
			}
			gw, err := gateway.New(ctx, conn, opts)
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", httpAddr)
			if err != nil {
				return fmt.Errorf("listen on %s (--http): %w", httpAddr, err)
			}
			srv := gateway.NewServer(gw, log)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(lis) }()
			fmt.Fprintf(cmd.OutOrStdout(), "CarbonDesk gateway ready\n  console  http://%s/\n  REST     http://%s/v1/ -> gRPC %s\n%sPress Ctrl-C to stop.\n",
				lis.Addr(), lis.Addr(), strings.Join(upstreams, " "), metricsLine)
			select {
			case <-ctx.Done():
				srv.Stop(shutdown)
				return <-done
			case err := <-done:
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&upstreams, "upstream", []string{"127.0.0.1:7070"}, "gRPC listener to forward to: host:port for every service, or SERVICE=host:port (registry, catalog, matching, talent) for one; repeatable")
	f.StringVar(&httpAddr, "http", "127.0.0.1:8080", "listen address of the gateway and console")
	f.StringVar(&metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (default: none)")
	f.DurationVar(&shutdown, "shutdown-timeout", 5*time.Second, "how long a stop waits for calls in flight")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

// dialUpstreams connects to the --upstream addresses: the default
// connection (the plain host:port, else the first service's) and one per
// service named, keyed by its full gRPC name.
func dialUpstreams(upstreams []string) (*grpc.ClientConn, map[string]*grpc.ClientConn, error) {
	names := map[string]string{
		registry.Name: registry.ServiceName, catalog.Name: catalog.ServiceName,
		matching.Name: matching.ServiceName, talent.Name: talent.ServiceName,
	}
	var def string
	byName := map[string]string{}
	for _, u := range upstreams {
		svc, addr, named := strings.Cut(u, "=")
		if !named {
			def = u
			continue
		}
		full, ok := names[svc]
		if !ok || addr == "" {
			return nil, nil, fmt.Errorf("--upstream %q: want host:port or SERVICE=host:port with SERVICE one of registry, catalog, matching, talent", u)
		}
		byName[full] = addr
		if def == "" {
			def = addr
		}
	}
	if def == "" {
		return nil, nil, fmt.Errorf("--upstream: give at least one address")
	}
	conns := map[string]*grpc.ClientConn{}
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for full, addr := range byName {
		c, err := gateway.Dial(addr)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conns[full] = c
	}
	conn, err := gateway.Dial(def)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return conn, conns, nil
}
