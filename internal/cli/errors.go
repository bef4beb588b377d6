package cli

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Error is an error a command returns after talking to the desk: Error()
// gives the gRPC status code and message, then one line per field
// violation the server attached (google.rpc.BadRequest).
type Error struct {
	Op  string // what the command did: "register institution"
	Err error
}

// Wrap makes err, returned by an RPC, an *Error; nil stays nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Err: err}
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	s, ok := status.FromError(e.Err)
	if !ok {
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
	var (
		b   strings.Builder
		msg = s.Message()
		fvs = FieldViolations(e.Err)
	)
	// Servers often repeat the violations in the message; list them once.
	if len(fvs) > 0 {
		if i := strings.Index(msg, fvs[0].GetField()); i > 0 {
			msg = strings.TrimRight(msg[:i], ": ")
		}
	}
	fmt.Fprintf(&b, "%s: %s: %s", e.Op, s.Code(), msg)
	for _, v := range fvs {
		fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
	}
	return b.String()
}

// FieldViolations lists the google.rpc.BadRequest field violations carried
// by a gRPC status error, anywhere in err's chain.
func FieldViolations(err error) []*errdetails.BadRequest_FieldViolation {
	var out []*errdetails.BadRequest_FieldViolation
	for e := err; e != nil; e = errors.Unwrap(e) {
		s, ok := status.FromError(e)
		if !ok {
			continue
		}
		for _, d := range s.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				out = append(out, br.GetFieldViolations()...)
			}
		}
		break
	}
	return out
}
