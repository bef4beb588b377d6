package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/carbondesk/carbondesk/internal/errs"
)

func TestGuard(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	v := Verifier{Keys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}}
	table := map[string]Rule{
		"/t.S/Read":  {Roles: []Role{Staff, Enterprise}},
		"/t.S/Write": {Roles: []Role{Staff}, Write: true},
	}
	g := NewGuard(v, table, Limits{WritesPerSecond: 1, WriteBurst: 3}, slog.New(slog.DiscardHandler))
	tok := func(c Caller) context.Context {
		s, err := Issuer{Key: key}.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+s))
	}
	call := func(ctx context.Context, method string) (Caller, error) {
		var seen Caller
		_, err := g.Unary()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
			seen, _ = CallerFrom(ctx)
			return nil, nil
		})
		return seen, err
	}
	staff := Caller{Subject: "ma", Role: Staff}
	ent := Caller{Subject: "li", Role: Enterprise, Org: "91420106MA4K00010G"}

	if _, err := call(context.Background(), "/grpc.health.v1.Health/Check"); err != nil {
		t.Errorf("health without a token: %v", err)
	}
	if _, err := call(context.Background(), "/t.S/Read"); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Errorf("no token: %v", err)
	}
	if c, err := call(tok(ent), "/t.S/Read"); err != nil || c != ent {
		t.Errorf("enterprise read: %+v %v", c, err)
	}
	if _, err := call(tok(ent), "/t.S/Write"); !errors.Is(err, errs.ErrPermissionDenied) {
		t.Errorf("enterprise write: %v, want PermissionDenied", err)
	}
	if _, err := call(tok(staff), "/t.S/NotInTable"); !errors.Is(err, errs.ErrPermissionDenied) {
		t.Errorf("method without a rule: %v, want PermissionDenied", err)
	}
	// The burst of 3 writes passes, the 4th is refused; another caller is
	// not affected.
	for i := 1; i <= 4; i++ {
		_, err := call(tok(staff), "/t.S/Write")
		if (i <= 3) != (err == nil) {
			t.Fatalf("write %d: %v", i, err)
		}
		if i == 4 && !errors.Is(err, errs.ErrResourceExhausted) {
			t.Fatalf("write 4: %v, want ResourceExhausted", err)
		}
	}
	if _, err := call(tok(Caller{Subject: "zhou", Role: Staff}), "/t.S/Write"); err != nil {
		t.Fatalf("another caller's write: %v", err)
	}
	// Reads are not rate limited.
	for range 10 {
		if _, err := call(tok(staff), "/t.S/Read"); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

func TestOwns(t *testing.T) {
	t.Parallel()
	org := "91420106MA4K00010G"
	tests := []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no caller (the desk itself)", context.Background(), true},
		{"staff", WithCaller(context.Background(), Caller{Subject: "s", Role: Staff}), true},
		{"same org", WithCaller(context.Background(), Caller{Subject: "s", Role: Institution, Org: org}), true},
		{"other org", WithCaller(context.Background(), Caller{Subject: "s", Role: Institution, Org: "91110108551385082Q"}), false},
		{"enterprise other org", WithCaller(context.Background(), Caller{Subject: "s", Role: Enterprise, Org: "x"}), false},
	}
	for _, tt := range tests {
		if got := Owns(tt.ctx, org); got != tt.want {
			t.Errorf("%s: Owns = %v, want %v", tt.name, got, tt.want)
		}
	}
}
