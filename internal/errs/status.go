package errs

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbondesk/carbondesk/internal/store"
)

// Status maps any error a handler returns to a gRPC status. It is the only
// place the mapping lives. Errors that are already statuses pass through.
// The second result is false when the error is unexpected (Internal): the
// caller should log its cause, which the status does not reveal.
func Status(err error) (*status.Status, bool) {
	if err == nil {
		return status.New(codes.OK, ""), true
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s, true
	}
	var inv *InvalidError
	if errors.As(err, &inv) {
		s := status.New(codes.InvalidArgument, inv.Error())
		br := &errdetails.BadRequest{}
		for _, fv := range inv.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: fv.Field, Description: fv.Description})
		}
		if d, derr := s.WithDetails(br); derr == nil {
			s = d
		}
		return s, true
	}
	var de *Error
	msg := err.Error()
	if errors.As(err, &de) {
		msg = de.Message
	}
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return status.New(codes.NotFound, msg), true
	case errors.Is(err, ErrAlreadyExists):
		return status.New(codes.AlreadyExists, msg), true
	case errors.Is(err, ErrFailedPrecondition):
		return status.New(codes.FailedPrecondition, msg), true
	case errors.Is(err, ErrAborted), errors.Is(err, store.ErrConflict):
		if de == nil {
			msg = "the object changed since it was read; read it again and retry"
		}
		return status.New(codes.Aborted, msg), true
	case errors.Is(err, ErrInvalid):
		return status.New(codes.InvalidArgument, msg), true
	case errors.Is(err, ErrPermissionDenied):
		return status.New(codes.PermissionDenied, msg), true
	case errors.Is(err, ErrUnauthenticated):
		return status.New(codes.Unauthenticated, msg), true
	case errors.Is(err, ErrResourceExhausted):
		return status.New(codes.ResourceExhausted, msg), true
	case errors.Is(err, ErrUnavailable), errors.Is(err, store.ErrUnavailable):
		if de == nil {
			msg = "storage is unavailable; retry shortly"
		}
		return status.New(codes.Unavailable, msg), true
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded"), true
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request cancelled"), true
	}
	return status.New(codes.Internal, "internal error"), false
}
