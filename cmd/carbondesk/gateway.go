package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/carbondesk/carbondesk/services/gateway"
)

// newGatewayCmd runs the gateway alone, in front of a desk's gRPC listener
// elsewhere. It offers no development sign-in: it holds no signing key.
func newGatewayCmd() *cobra.Command {
	var (
		upstream  string
		httpAddr  string
		shutdown  time.Duration
		logFormat string
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run only the REST/JSON gateway and web console, in front of a carbondesk gRPC listener",
		Long: `Runs the REST/JSON gateway and web console alone, forwarding every call to
the gRPC listener at --upstream with the caller's bearer token. The single
binary (carbondesk with no subcommand) runs the same gateway on --http itself.`,
		Example: `  carbondesk gateway --upstream carbondesk:7070 --http 0.0.0.0:8080`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logFormat, logLevel)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			conn, err := gateway.Dial(upstream)
			if err != nil {
				return err
			}
			defer conn.Close()
			gw, err := gateway.New(ctx, conn, gateway.Options{Log: log})
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
			fmt.Fprintf(cmd.OutOrStdout(), "CarbonDesk gateway ready\n  console  http://%s/\n  REST     http://%s/v1/ -> gRPC %s\nPress Ctrl-C to stop.\n",
				lis.Addr(), lis.Addr(), upstream)
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
	f.StringVar(&upstream, "upstream", "127.0.0.1:7070", "address of the carbondesk gRPC listener to forward to")
	f.StringVar(&httpAddr, "http", "127.0.0.1:8080", "listen address of the gateway and console")
	f.DurationVar(&shutdown, "shutdown-timeout", 5*time.Second, "how long a stop waits for calls in flight")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}
