// Package app wires CarbonDesk's services into a running process: the event
// backbone (embedded or external NATS JetStream), the store (embedded bbolt
// files or Redis), the outbox relay of each service, the gRPC listener, demo
// seeds on first start, and the shutdown that undoes it all in reverse order.
// cmd/carbondesk only parses flags into a Config and calls Run.
package app

import (
	"fmt"
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
	// HTTPAddr is reserved for the REST/JSON gateway and console, which are
	// not built yet.
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
	return nil
}
