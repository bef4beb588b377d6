package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves a Gateway over HTTP.
type Server struct {
	gw  *Gateway
	srv *http.Server
	log *slog.Logger
}

// NewServer returns an HTTP server for gw. It sets no write timeout: the
// live match feed is a response that lasts as long as the client wants.
func NewServer(gw *Gateway, log *slog.Logger) *Server {
	return &Server{gw: gw, log: log, srv: &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// Serve accepts connections on lis until Stop.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// Stop ends the open streams, waits at most timeout for the calls in
// flight, then closes what is left.
func (s *Server) Stop(timeout time.Duration) {
	s.gw.CloseStreams()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("gateway: graceful stop timed out; closing open connections", "timeout", timeout)
		_ = s.srv.Close()
	}
}
