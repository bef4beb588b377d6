package main

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/carbondesk/carbondesk/internal/grpcx"
)

// TestHealthCommand: `carbondesk health` exits 0 for a SERVING server and
// fails for a NOT_SERVING service and for nobody listening.
func TestHealthCommand(t *testing.T) {
	t.Parallel()
	srv := grpcx.New(slog.New(slog.DiscardHandler), grpcx.Options{})
	srv.SetServing("", true)
	srv.SetServing("carbondesk.test.Down", false)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(time.Second) })

	run := func(args ...string) (string, error) {
		cmd := newHealthCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.Execute()
		return out.String(), err
	}
	if out, err := run("--addr", lis.Addr().String()); err != nil || !strings.Contains(out, "SERVING") {
		t.Errorf("a serving server: %q, %v", out, err)
	}
	if _, err := run("--addr", lis.Addr().String(), "--service", "carbondesk.test.Down"); err == nil || !strings.Contains(err.Error(), "NOT_SERVING") {
		t.Errorf("a NOT_SERVING service: %v, want an error naming NOT_SERVING", err)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	_ = free.Close()
	if _, err := run("--addr", addr, "--timeout", "500ms"); err == nil {
		t.Error("nobody listening: no error")
	}
}
