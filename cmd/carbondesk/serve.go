package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/carbondesk/carbondesk/internal/app"
	"github.com/carbondesk/carbondesk/internal/lease"
)

// newServeCmd runs one service per process: `serve registry|catalog|
// matching|talent` against an external NATS and Redis, `serve gateway` the
// REST/JSON gateway in front of them.
func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve SERVICE",
		Short: "Run one service in this process (registry, catalog, matching, talent or gateway)",
		Long: `Runs one CarbonDesk service in this process, pointed at an external NATS
JetStream (--nats) and Redis (--redis), with its own gRPC listener (--grpc) and
Prometheus metrics (--metrics). Run as many replicas of a service as you like:
they share the work (durable consumers), and the outbox relay and deadline
sweeps run in one replica at a time (a lease in the NATS KeyValue bucket
"` + lease.DefaultBucket + `"). 'serve gateway' runs the REST/JSON gateway and
console in front of the services' gRPC listeners.`,
		Example: `  carbondesk serve registry --nats nats://nats:4222 --redis redis://redis:6379/0 --grpc 0.0.0.0:7070 --metrics 0.0.0.0:9090
  carbondesk serve gateway --upstream registry=registry:7070 --upstream catalog=catalog:7070 \
    --upstream matching=matching:7070 --upstream talent=talent:7070 --http 0.0.0.0:8080`,
		Args: cobra.NoArgs,
	}
	for _, name := range app.Services {
		cmd.AddCommand(newServeServiceCmd(name))
	}
	cmd.AddCommand(newGatewayCmd())
	return cmd
}

func newServeServiceCmd(service string) *cobra.Command {
	cfg := app.Defaults()
	cfg.Services = []string{service}
	cfg.HTTPAddr = ""
	cfg.Seed = false
	var logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   service,
		Short: "Run the " + service + " service alone, against --nats and --redis",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.NATSURL == "" {
				return errors.New("serve " + service + ": --nats is required (nats://host:4222)")
			}
			if cfg.RedisURL == "" {
				return errors.New("serve " + service + ": --redis is required (redis://host:6379/0)")
			}
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			log = log.With("process", service)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return app.Run(ctx, cfg, log, func(r app.Ready) { printReady(cmd.OutOrStdout(), cfg, r) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NATSURL, "nats", "", "NATS URL(s), comma-separated (nats://host:4222); required")
	f.StringVar(&cfg.RedisURL, "redis", "", "Redis URL (redis://host:6379/0); required")
	f.StringVar(&cfg.RedisKeyPrefix, "redis-prefix", "carbondesk", "prefix of every Redis key (<prefix>:{<service>}:...); replicas of a service must share it")
	f.StringVar(&cfg.GRPCAddr, "grpc", cfg.GRPCAddr, "listen address of the service's gRPC listener")
	f.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (default: none)")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "folder of the development token key (without --token-public-keys)")
	f.BoolVar(&cfg.Seed, "seed", false, "load the demo data on first start (replicas take turns; start the services in order registry, catalog, matching, talent)")
	f.IntVar(&cfg.StreamReplicas, "stream-replicas", cfg.StreamReplicas, "replicas of the service's streams and of the lease bucket (3 on a NATS cluster)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", lease.DefaultTTL, "how long a replica that died keeps the outbox relay and sweeps before another takes over")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long a stop waits for calls in flight and the outbox flush")
	f.StringVar(&cfg.TokenPublicKeys, "token-public-keys", "", "PEM file of Ed25519 public keys whose tokens are accepted (default: development key in --data)")
	f.StringVar(&cfg.TokenIssuer, "token-issuer", cfg.TokenIssuer, "required iss claim of tokens")
	f.StringVar(&cfg.TokenAudience, "token-audience", cfg.TokenAudience, "required aud claim of tokens")
	f.Float64Var(&cfg.WritesPerSecond, "writes-per-second", cfg.WritesPerSecond, "write calls allowed per caller per second, per replica (0: unlimited)")
	f.IntVar(&cfg.WriteBurst, "write-burst", cfg.WriteBurst, "burst of write calls allowed per caller")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}
