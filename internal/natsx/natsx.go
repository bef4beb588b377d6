// Package natsx starts the NATS JetStream server CarbonDesk embeds in its
// single binary, and connects to NATS, embedded or external, with the options
// the platform relies on. It holds no publishing or consuming logic: that is
// in packages outbox and consumer.
//
// # Embedded server
//
// Start runs a real nats-server (the Go module, not a mock) inside the
// process, with JetStream on FILE storage in a data folder, so events survive
// a restart. By default it opens no TCP port at all: clients in the same
// process connect through an in-memory pipe (Server.Connect). When asked for
// an address it listens there; it never falls back to 4222, the port a
// system NATS may already hold.
//
// # Durability: sync always
//
// The outbox relay marks an event sent as soon as the stream acknowledges it,
// and then forgets it. JetStream's file store acknowledges a message once it
// is written to the operating system, and by default fsyncs only every two
// minutes; the Jepsen analysis of NATS 2.12.1 (2025) lost acknowledged writes
// to power failure exactly this way. On a single node there is no replica to
// recover from, so the embedded server runs with sync always (the server
// option SyncAlways, "sync_interval: always" in a config file): every stored
// message is fsynced before its acknowledgement is sent.
//
// What it costs: one fsync per stored message (and per consumer state
// change), so every publish waits for the disk, and the server does not
// batch those fsyncs. On the project's 2-core machine (BenchmarkRelay in
// package outbox, both settings in one run) one stream took 2,200-3,500
// acknowledged publishes/s with sync always against 26,000-33,000/s relaxed:
// 0.3-0.4 ms of fsync per message, an eight- to tenfold cost. Streams of
// different services sync independently. If the single binary ever needs
// more, the way is an R3 cluster, not relaxing this.
//
// What a host crash (power loss, kernel panic) can lose with sync always:
// nothing the stream acknowledged. An event not yet acknowledged stays
// pending in the store and is published after restart; the duplicate window
// drops a second copy. A process crash (kill -9) never loses acknowledged
// messages either way: they are in the OS page cache. A stream created with
// PersistMode async opts out of sync always; CarbonDesk's streams
// (events.StreamConfig) do not.
//
// Clusters (docker-compose, deploy/) run R3 streams instead: an
// acknowledgement there means a quorum of nodes holds the message, and the
// external servers' own configuration decides their sync interval.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure an embedded server.
type Options struct {
	// Dir is the data folder; JetStream keeps its file store here. Required.
	Dir string
	// Name is the server's name (shown in monitoring and logs). Default
	// "carbondesk".
	Name string
	// Listen is the client address. "" opens no TCP listener at all: only
	// in-process clients (Server.Connect) can reach the server.
	// "127.0.0.1:0" picks a free loopback port. A port is never defaulted:
	// "127.0.0.1" alone is an error rather than a silent 4222.
	Listen string
	// ReadyTimeout bounds how long Start waits for the server to accept
	// clients. Default 10 s.
	ReadyTimeout time.Duration
	// RelaxedSync turns sync always off and leaves the server's default
	// (fsync every two minutes). Only for measuring what sync always costs;
	// a host crash can then lose acknowledged events. See the package doc.
	RelaxedSync bool
	// Log receives the server's notices, warnings and errors. nil: silent.
	Log *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	ns        *server.Server
	listens   bool
	clientURL string
}

// Start starts an embedded server and waits until it accepts clients.
func Start(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("natsx: start: Options.Dir (the JetStream data folder) is required")
	}
	if opts.Name == "" {
		opts.Name = "carbondesk"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	so := &server.Options{
		ServerName: opts.Name,
		JetStream:  true,
		StoreDir:   opts.Dir,
		SyncAlways: !opts.RelaxedSync,
		// An embedded server must not install its own signal handlers: the
		// process owns SIGINT/SIGTERM and shuts the server down in order.
		NoSigs: true,
		NoLog:  opts.Log == nil,
		// HTTP monitoring, clustering, leaf nodes, websocket and MQTT stay off
		// (their ports default to 0, which means disabled).
	}
	if opts.Listen == "" {
		so.DontListen = true
		// Host/Port are ignored with DontListen, but set them so nothing
		// reads the 4222 default by accident.
		so.Host = "127.0.0.1"
		so.Port = server.RANDOM_PORT
	} else {
		host, portStr, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("natsx: start: listen address %q: %w", opts.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("natsx: start: listen address %q: bad port", opts.Listen)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		so.Host = host
		so.Port = port
		if port == 0 {
			// In nats-server, Port 0 means "the default, 4222"; -1 means "any
			// free port", which is what ":0" means everywhere else.
			so.Port = server.RANDOM_PORT
		}
	}

	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsx: start: %w", err)
	}
	// The server reports fatal start-up errors (port taken, JetStream store
	// unusable) through its logger and then stops; catch them so Start
	// fails at once with the reason instead of waiting for ReadyTimeout.
	fatal := make(chan string, 1)
	ns.SetLoggerV2(&logAdapter{log: opts.Log, fatal: fatal}, false, false, false)
	ns.Start()

	ready := make(chan bool, 1)
	go func() { ready <- ns.ReadyForConnections(opts.ReadyTimeout) }()
	select {
	case msg := <-fatal:
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsx: start: %s", msg)
	case ok := <-ready:
		if !ok {
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil, fmt.Errorf("natsx: start: server not ready for connections after %s", opts.ReadyTimeout)
		}
	}
	// JetStream is enabled during Start; if it failed the fatal channel has
	// the reason, but check once more in case the race went the other way.
	if !ns.JetStreamEnabled() {
		reason := "JetStream did not start"
		select {
		case msg := <-fatal:
			reason = msg
		default:
		}
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsx: start: %s", reason)
	}

	s := &Server{ns: ns, listens: !so.DontListen}
	if s.listens {
		s.clientURL = ns.ClientURL()
	}
	return s, nil
}

// ClientURL is the nats:// URL of the TCP listener, for clients in other
// processes; "" when the server has no listener (use Connect).
func (s *Server) ClientURL() string { return s.clientURL }

// Connect opens a client connection to this server: in-process when it has
// no listener, over TCP (with ConnectOptions' reconnect settings) when it
// does. opts are applied last, so they override the defaults.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if !s.listens {
		all := append([]nats.Option{nats.Name("carbondesk"), nats.InProcessServer(s.ns)}, opts...)
		nc, err := nats.Connect("", all...)
		if err != nil {
			return nil, fmt.Errorf("natsx: connect in-process: %w", err)
		}
		return nc, nil
	}
	all := append(ConnectOptions("carbondesk"), opts...)
	nc, err := nats.Connect(s.clientURL, all...)
	if err != nil {
		return nil, fmt.Errorf("natsx: connect %s: %w", s.clientURL, err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped. In-process
// connections are closed; TCP clients start reconnecting. Safe to call more
// than once.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// Connect connects to an external NATS server (or cluster: url may list
// several, comma-separated) as the named client, with ConnectOptions. opts
// are applied last, for example a nats.ReconnectHandler that wakes the
// outbox relay.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	all := append(ConnectOptions(name), opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("natsx: connect %s: %w", url, err)
	}
	return nc, nil
}

// ConnectOptions are the client options for a connection that must outlive
// NATS outages: a service keeps taking writes while NATS is away (the outbox
// holds the events), so the connection never gives up.
//
//   - RetryOnFailedConnect: the process starts even if NATS is down at that
//     moment; the connection keeps trying in the background.
//   - MaxReconnects(-1): reconnect forever; a closed connection would need a
//     restart to recover.
//   - ReconnectWait 1 s with jitter: quick recovery without a thundering
//     herd of services reconnecting in lockstep.
//   - ReconnectBufSize 16 MiB: what is published while disconnected is
//     buffered and sent on reconnect. The relay waits for acknowledgements,
//     so the buffer only smooths short blips; nothing depends on it.
//   - PingInterval 10 s, 3 outstanding: a silently dead server (half-open TCP)
//     is noticed within about 30 s instead of the default 4 minutes.
func ConnectOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.ReconnectBufSize(16 << 20),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(3),
	}
}

// logAdapter sends the server's log lines to slog and reports fatal ones.
type logAdapter struct {
	log   *slog.Logger
	fatal chan<- string
}

func (l *logAdapter) Noticef(format string, v ...any) { l.emit(slog.LevelInfo, format, v) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.emit(slog.LevelWarn, format, v) }
func (l *logAdapter) Errorf(format string, v ...any)  { l.emit(slog.LevelError, format, v) }
func (l *logAdapter) Debugf(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }
func (l *logAdapter) Tracef(format string, v ...any)  { l.emit(slog.LevelDebug-4, format, v) }

// Fatalf must not exit the process (the server's own logger would): the
// embedding program decides. Start turns the message into its error.
func (l *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.emit(slog.LevelError, "%s", []any{msg})
	select {
	case l.fatal <- msg:
	default:
	}
}

func (l *logAdapter) emit(level slog.Level, format string, v []any) {
	if l.log == nil {
		return
	}
	l.log.Log(context.Background(), level, "nats-server: "+fmt.Sprintf(format, v...))
}
