// Package auth decides who may do what at the desk.
//
// Every RPC carries a bearer token: a JWT signed with Ed25519 (EdDSA) that
// names its subject, role (staff, institution, enterprise), organisation,
// issuer, audience and expiry. The interceptors here verify it on every call
// except health and reflection, check the caller's role against THE
// authorization table (table.go, one entry per RPC of every service), limit
// each caller's write rate, and put the Caller in the context. Handlers then
// apply the entry's ownership rule with Owns/Sees: someone else's object
// answers NotFound, as if it did not exist.
//
// An organisation is named by its unified social credit code: the
// institution's or enterprise's own identity, known before it registers at
// the desk. Staff tokens may carry the district's code.
package auth

import (
	"context"

	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
)

// Role is what kind of party a caller is.
type Role string

// The roles. A token with any other role is refused.
const (
	Staff       Role = "staff"
	Institution Role = "institution"
	Enterprise  Role = "enterprise"
)

// Roles lists every role, for tables and tests.
var Roles = []Role{Staff, Institution, Enterprise}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == Staff || r == Institution || r == Enterprise
}

// Caller is the authenticated party making a call.
type Caller struct {
	Subject string // the token's sub: a person or a system account
	Role    Role
	Org     string // organisation (unified social credit code); may be empty for staff
}

type callerKey struct{}

// WithCaller returns ctx carrying c, and c as the actor of the events the
// call causes.
func WithCaller(ctx context.Context, c Caller) context.Context {
	ctx = context.WithValue(ctx, callerKey{}, c)
	return events.WithActor(ctx, events.Actor{Subject: c.Subject, Role: string(c.Role), OrganizationID: c.Org})
}

// CallerFrom returns the context's caller.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// IsStaff reports whether the caller is district staff, or the desk itself
// (a context with no caller: seeds, sweeps, in-process calls).
func IsStaff(ctx context.Context) bool {
	c, ok := CallerFrom(ctx)
	return !ok || c.Role == Staff
}

// Owns reports whether the caller may act on an object owned by the
// organisation ownerOrg: staff on everything, anyone else only on their own
// organisation's objects. A context with no caller (in-process calls by the
// desk itself: seeds, sweeps) owns everything.
func Owns(ctx context.Context, ownerOrg string) bool {
	c, ok := CallerFrom(ctx)
	if !ok || c.Role == Staff {
		return true
	}
	return c.Org != "" && c.Org == ownerOrg
}

// MustOwn returns the NotFound a handler answers when the caller may not
// see the object: the same answer as for an object that does not exist, so
// ids cannot be probed.
func MustOwn(ctx context.Context, ownerOrg, what, id string) error {
	if Owns(ctx, ownerOrg) {
		return nil
	}
	return errs.NotFound(what, id)
}
