package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// newHealthCmd checks a running service's gRPC health, for container health
// checks in images without a shell: exit 0 when SERVING, 1 otherwise.
func newHealthCmd() *cobra.Command {
	var (
		addr, service string
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a running service's gRPC health (exit 0 when SERVING)",
		Long: `Asks the gRPC health service at --addr whether --service (default: the
whole server) is SERVING. A service reports NOT_SERVING while it cannot reach
NATS or its store. For container health checks: the image has no shell.`,
		Example: `  carbondesk health --addr 127.0.0.1:7070
  carbondesk health --addr 127.0.0.1:7070 --service carbondesk.matching.v1.MatchingService`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return fmt.Errorf("health: %s: %w", addr, err)
			}
			defer cc.Close()
			resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				return fmt.Errorf("health: %s: %w", addr, err)
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("health: %s: %s", addr, resp.GetStatus())
			}
			fmt.Fprintln(cmd.OutOrStdout(), resp.GetStatus())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:7070", "gRPC address of the service")
	f.StringVar(&service, "service", "", "gRPC service name to check (default: the whole server)")
	f.DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}
