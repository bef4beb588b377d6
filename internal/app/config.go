// Package app wires CarbonDesk's services into a running process: the event
// backbone (embedded or external NATS JetStream), the store (embedded bbolt
// files or Redis), the outbox relay of each service, the gRPC listener, the
// REST/JSON gateway and console on top of it, demo seeds on first start, and
// the shutdown that undoes it all in reverse order. Each service is a unit
// (units.go): the single binary runs them all, `carbondesk serve X` one, with
// leases (internal/lease) so replicas never relay or sweep twice; metrics.go
// holds the Prometheus metrics and the readiness check.
// cmd/carbondesk only parses flags into a Config and calls Run.
package app

import (
	"fmt"
	"slices"

	"github.com/carbondesk/carbondesk/internal/auth"
	"log/slog"
	"net/url"
	"time"
)

// Config is everything a CarbonDesk process needs, with defaults that run the
// whole desk on a laptop.
type Config struct {
	// DataDir holds the embedded store files and the embedded NATS storage.
	DataDir string
	// GRPCAddr is the one listener all gRPC services share.
	GRPCAddr string
	// HTTPAddr is where the REST/JSON gateway and the web console listen
	// (services/gateway); empty: no HTTP listener.
	HTTPAddr string
	// RedisURL, when set, stores data in Redis instead of the data folder.
	RedisURL string
	// NATSURL, when set, uses that NATS server instead of an embedded one.
	NATSURL string
	// NATSListen, when set, gives the embedded NATS a TCP listener (so
	// outside tools can read the streams); by default it is in-process only
	// and takes no port.
	NATSListen string
	// Seed loads the demo data from seeds/ on first start.
	Seed bool
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
	// StreamReplicas is the replica count of each service's stream: 1 on one
	// node, 3 in a cluster.
	StreamReplicas int
	// TokenPublicKeys is a PEM file of the Ed25519 public keys whose tokens
	// the server accepts. Empty: development mode, with a signing key
	// created in the data folder (see 'carbondesk token').
	TokenPublicKeys string
	// TokenIssuer and TokenAudience are the iss and aud claims required.
	TokenIssuer   string
	TokenAudience string
	// WritesPerSecond and WriteBurst limit each caller's writes.
	WritesPerSecond float64
	WriteBurst      int
	// Services are the services this process runs (see Services); empty:
	// all of them, the single binary.
	Services []string
	// MetricsAddr is where Prometheus metrics are served at /metrics;
	// empty: none.
	MetricsAddr string
	// LeaseTTL is how long a replica that died keeps its leases (outbox
	// relay, sweeps) with an external NATS; 0: lease.DefaultTTL.
	LeaseTTL time.Duration
	// RedisKeyPrefix starts every Redis key: "<prefix>:{<service>}:...".
	// Empty: "carbondesk".
	RedisKeyPrefix string
	// ReadinessEvery is how often NATS and the stores are checked for the
	// gRPC health status; 0: 5 s.
	ReadinessEvery time.Duration
}

// services are the services to run, in start-up order.
func (c Config) services() []string {
	if len(c.Services) == 0 {
		return Services
	}
	return c.Services
}

// Defaults returns the laptop configuration.
func Defaults() Config {
	return Config{
		DataDir:         "data",
		GRPCAddr:        "127.0.0.1:7070",
		HTTPAddr:        "127.0.0.1:8080",
		Seed:            true,
		ShutdownTimeout: 10 * time.Second,
		StreamReplicas:  1,
		TokenIssuer:     auth.DefaultIssuer,
		TokenAudience:   auth.DefaultAudience,
		WritesPerSecond: auth.DefaultLimits().WritesPerSecond,
		WriteBurst:      auth.DefaultLimits().WriteBurst,
	}
}

// LogValue prints the configuration with secrets masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("data", c.DataDir),
		slog.String("grpc", c.GRPCAddr),
		slog.String("http", c.HTTPAddr),
		slog.String("redis", maskURL(c.RedisURL)),
		slog.String("nats", maskURL(c.NATSURL)),
		slog.String("nats_listen", c.NATSListen),
		slog.Bool("seed", c.Seed),
		slog.Int("stream_replicas", c.StreamReplicas),
		slog.String("token_public_keys", c.TokenPublicKeys),
		slog.String("token_issuer", c.TokenIssuer),
		slog.String("token_audience", c.TokenAudience),
		slog.Float64("writes_per_second", c.WritesPerSecond),
		slog.Int("write_burst", c.WriteBurst),
		slog.Any("services", c.services()),
		slog.String("metrics", c.MetricsAddr),
	)
}

func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return u.String()
}

func (c Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: --data must not be empty")
	}
	if c.GRPCAddr == "" {
		return fmt.Errorf("config: --grpc must not be empty")
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return fmt.Errorf("config: stream replicas must be 1..5, got %d", c.StreamReplicas)
	}
	for _, s := range c.Services {
		if !slices.Contains(Services, s) {
			return fmt.Errorf("config: unknown service %q: want one of %v", s, Services)
		}
	}
	return nil
}
