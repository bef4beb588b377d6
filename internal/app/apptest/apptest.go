// Package apptest starts a whole desk (app.Run) inside a test process, for
// the tests of the packages that drive it from outside: the app's own, the
// gateway's, the console's and the command line's.
package apptest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/carbondesk/carbondesk/internal/app"
)

// Start runs app.Run with cfg and returns once it is ready, with a stop
// function that ends it and waits (idempotent; the test's cleanup calls it
// too). The test fails when Run ends before it is ready or is not ready
// within timeout, and when Run returns an error at the end. log may be nil.
func Start(tb testing.TB, cfg app.Config, log *slog.Logger, timeout time.Duration) (app.Ready, func()) {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan app.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, log, func(r app.Ready) { ready <- r }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("app.Run: %v", err)
			}
		})
	}
	select {
	case r := <-ready:
		tb.Cleanup(stop)
		return r, stop
	case err := <-done:
		cancel()
		tb.Fatalf("app.Run ended before it was ready: %v", err)
	case <-time.After(timeout):
		tb.Cleanup(stop)
		tb.Fatalf("app.Run not ready within %s", timeout)
	}
	return app.Ready{}, stop
}
