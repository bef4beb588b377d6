// Command carbondesk runs the CarbonDesk carbon-finance service desk. With no
// arguments it runs every service in one process with an embedded NATS
// JetStream server and an embedded store in ./data, loading the demo data on
// first start.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/carbondesk/carbondesk/internal/app"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "carbondesk:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	cfg := app.Defaults()
	var (
		noSeed    bool
		logFormat string
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "carbondesk",
		Short: "CarbonDesk: a district's carbon-finance service desk",
		Long: `CarbonDesk runs a district's carbon-finance service desk: the institution
registry, catalog, matching and talent base over gRPC, with their events on NATS
JetStream, and the REST/JSON gateway and web console on --http.

With no arguments it runs every service in one process, with an embedded NATS
JetStream server and an embedded store in --data, and loads the demo data from
seeds/ on first start. --redis and --nats point it at external servers instead.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Seed = !noSeed
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return app.Run(ctx, cfg, log, func(r app.Ready) { printReady(cmd.OutOrStdout(), cfg, r) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data folder for the embedded store and embedded NATS")
	f.StringVar(&cfg.GRPCAddr, "grpc", cfg.GRPCAddr, "listen address shared by all gRPC services")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "listen address of the REST/JSON gateway and web console (empty: none)")
	f.StringVar(&cfg.RedisURL, "redis", "", "Redis URL (redis://host:6379/0) to store data in instead of the data folder")
	f.StringVar(&cfg.NATSURL, "nats", "", "NATS URL (nats://host:4222) to use instead of the embedded server")
	f.StringVar(&cfg.NATSListen, "nats-listen", "", "give the embedded NATS a TCP listener on this address (default: in-process only)")
	f.BoolVar(&noSeed, "no-seed", false, "do not load the demo data on first start")
	f.StringVar(&cfg.TokenPublicKeys, "token-public-keys", "", "PEM file of Ed25519 public keys whose tokens are accepted (default: development key in --data)")
	f.StringVar(&cfg.TokenIssuer, "token-issuer", cfg.TokenIssuer, "required iss claim of tokens")
	f.StringVar(&cfg.TokenAudience, "token-audience", cfg.TokenAudience, "required aud claim of tokens")
	f.Float64Var(&cfg.WritesPerSecond, "writes-per-second", cfg.WritesPerSecond, "write calls allowed per caller per second (0: unlimited)")
	f.IntVar(&cfg.WriteBurst, "write-burst", cfg.WriteBurst, "burst of write calls allowed per caller")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&cfg.MetricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9090; default: none)")
	cmd.AddCommand(newTokenCmd(), newGatewayCmd(), newServeCmd(), newHealthCmd())
	// Client verbs and 'seed' (client*.go, seed.go): they talk to a running desk over gRPC.
	cmd.AddCommand(clientCommands()...)
	return cmd
}

// printReady tells the user where the started process listens.
func printReady(w io.Writer, cfg app.Config, r app.Ready) {
	if len(cfg.Services) == 0 {
		fmt.Fprintf(w, "CarbonDesk ready in %s\n  gRPC     %s\n", r.Took.Round(time.Millisecond), r.GRPCAddr)
	} else {
		fmt.Fprintf(w, "CarbonDesk %s ready in %s\n  gRPC     %s\n", strings.Join(r.Services, ", "), r.Took.Round(time.Millisecond), r.GRPCAddr)
	}
	if r.HTTPAddr != "" {
		fmt.Fprintf(w, "  console  http://%s/\n  REST     http://%s/v1/ (OpenAPI at /openapi.json)\n", r.HTTPAddr, r.HTTPAddr)
	}
	if r.MetricsAddr != "" {
		fmt.Fprintf(w, "  metrics  http://%s/metrics\n", r.MetricsAddr)
	}
	if r.Embedded {
		nats := "embedded, in-process (no port; --nats-listen to expose it)"
		if r.NATSURL != "" {
			nats = "embedded, " + r.NATSURL
		}
		fmt.Fprintf(w, "  NATS     %s\n", nats)
	}
	fmt.Fprintf(w, "  store    %s (data folder %s)\n", r.StoreKind, cfg.DataDir)
	if r.DevTokens {
		fmt.Fprintf(w, "  tokens   development key; mint one: carbondesk token --data %s --role staff\n", cfg.DataDir)
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
