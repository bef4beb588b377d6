package testenv

import (
	"context"
	"errors"
	"testing"
)

// Background runs run in a goroutine until the test ends (a relay, a
// consumer, a service's Run), then cancels its context and waits for it.
// An error it returns, other than context.Canceled, fails the test, named
// by what.
func Background(tb testing.TB, what string, run func(ctx context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("%s: %v", what, err)
		}
	})
}
