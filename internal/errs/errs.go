// Package errs holds the domain error kinds every CarbonDesk service returns,
// and the one place they become gRPC statuses (Status). Handlers return these
// errors (wrapped with %w as they like); the server's interceptor maps them,
// so no handler builds a status by hand.
//
// Store sentinels (store.ErrNotFound, store.ErrConflict, store.ErrUnavailable)
// map too, so an adapter's failure reaches the caller with the right code
// even when a service does not translate it.
package errs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sentinels. Test with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrAborted            = errors.New("aborted")
	ErrInvalid            = errors.New("invalid argument")
	ErrPermissionDenied   = errors.New("permission denied")
	ErrUnauthenticated    = errors.New("unauthenticated")
	ErrResourceExhausted  = errors.New("resource exhausted")
	ErrUnavailable        = errors.New("unavailable")
)

// Error is a domain error with a message meant for a person.
type Error struct {
	Kind    error  // one of the sentinels above
	Message string // what happened and, where it helps, what to do
}

func (e *Error) Error() string { return e.Message }

// Unwrap makes errors.Is(err, e.Kind) true.
func (e *Error) Unwrap() error { return e.Kind }

// New returns an error of kind (a sentinel above, or a service's own error
// wrapping one) with a message for a person; Status shows the message and
// maps the kind to its code.
func New(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// NotFound says an object does not exist (or is not the caller's to see).
func NotFound(what, id string) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf("%s %q not found", what, id)}
}

// AlreadyExists says a unique value is taken.
func AlreadyExists(format string, args ...any) error {
	return New(ErrAlreadyExists, format, args...)
}

// FailedPrecondition says the object is in the wrong state for the call.
func FailedPrecondition(format string, args ...any) error {
	return New(ErrFailedPrecondition, format, args...)
}

// Aborted says the caller's version is stale: read again and retry.
func Aborted(format string, args ...any) error {
	return New(ErrAborted, format, args...)
}

// PermissionDenied says the caller may not do this.
func PermissionDenied(format string, args ...any) error {
	return New(ErrPermissionDenied, format, args...)
}

// Unauthenticated says the caller did not prove who they are.
func Unauthenticated(format string, args ...any) error {
	return New(ErrUnauthenticated, format, args...)
}

// ResourceExhausted says a limit was reached.
func ResourceExhausted(format string, args ...any) error {
	return New(ErrResourceExhausted, format, args...)
}

// Unavailable says a dependency is down; the call may be retried.
func Unavailable(format string, args ...any) error {
	return New(ErrUnavailable, format, args...)
}

// FieldViolation names one bad field of a request.
type FieldViolation struct {
	Field       string // proto field path, e.g. "credit_code" or "contact.email"
	Description string // what is wrong, with the value shown
}

// Violations collects field violations while a request is validated.
type Violations []FieldViolation

// Add records a violation; format describes it and should show the value.
func (v *Violations) Add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err returns an *InvalidError when any violation was recorded, else nil.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Violations: v}
}

// InvalidError is bad input: InvalidArgument with field violations.
type InvalidError struct {
	Violations []FieldViolation
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, fv := range e.Violations {
		parts[i] = fv.Field + ": " + fv.Description
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an InvalidError with one violation.
func Invalid(field, format string, args ...any) error {
	var v Violations
	v.Add(field, format, args...)
	return v.Err()
}

// IsContext reports whether err is the caller's own cancellation or deadline.
func IsContext(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Shorten cuts what a message echoes back of a caller's input to n runes,
// marking the cut with "…", so a megabyte of garbage does not come back in
// the error.
func Shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
