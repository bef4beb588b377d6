package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ErrorBody is every error the gateway answers, as JSON, with the HTTP
// status of the gRPC code (runtime.HTTPStatusFromCode: 400 INVALID_ARGUMENT
// and FAILED_PRECONDITION, 401, 403, 404, 409 ALREADY_EXISTS and ABORTED,
// 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE...). A server stream that fails
// after it started sends {"error": ErrorBody} as its last line.
type ErrorBody struct {
	// Code is the gRPC code's number, e.g. 3.
	Code int32 `json:"code"`
	// Status is the gRPC code's name, e.g. "INVALID_ARGUMENT".
	Status string `json:"status"`
	// Message says what went wrong, for a person.
	Message string `json:"message"`
	// Violations name the bad fields of the request (proto field paths,
	// e.g. "credit_code" or "demand.amount_yuan"), from the status's
	// google.rpc.BadRequest details.
	Violations []Violation `json:"violations,omitempty"`
	// RequestID is the X-Request-Id of the call, also in the desk's logs.
	RequestID string `json:"request_id,omitempty"`
}

// Violation is one bad field of a request.
type Violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// bodyOf turns a status into the error body.
func bodyOf(st *status.Status, requestID string) ErrorBody {
	b := ErrorBody{Code: int32(st.Code()), Status: codeName(st.Code()), Message: st.Message(), RequestID: requestID}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, fv := range d.GetFieldViolations() {
				b.Violations = append(b.Violations, Violation{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		case *errdetails.RequestInfo:
			if b.RequestID == "" {
				b.RequestID = d.GetRequestId()
			}
		}
	}
	return b
}

// withViolation adds a field violation to st.
func withViolation(st *status.Status, field, description string) *status.Status {
	br := &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}}
	if d, err := st.WithDetails(br); err == nil {
		return d
	}
	return st
}

// codeName is the canonical upper-case name of a gRPC code.
func codeName(c codes.Code) string {
	if n, ok := code.Code_name[int32(c)]; ok {
		return n
	}
	return fmt.Sprintf("CODE_%d", c)
}

// statusOf maps whatever reached the gateway to a status: the desk's
// statuses pass through, the caller's own cancellation is CANCELLED, and
// anything else is INTERNAL without its text.
func statusOf(err error) (*status.Status, bool) {
	if st, ok := status.FromError(err); ok {
		return st, true
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "request cancelled"), true
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded"), true
	}
	return status.New(codes.Internal, "internal error"), false
}

// writeError is the grpc-gateway error handler: a failed call, or a
// request it could not decode.
func (g *Gateway) writeError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st, expected := statusOf(err)
	if !expected {
		g.log.ErrorContext(ctx, "gateway: unexpected error", "path", r.URL.Path, "request_id", requestIDFrom(r.Context()), "err", err)
	}
	httpStatus := runtime.HTTPStatusFromCode(st.Code())
	if stateFrom(r.Context()).bodyTooLarge.Load() {
		httpStatus = http.StatusRequestEntityTooLarge
		st = status.New(codes.InvalidArgument, fmt.Sprintf("the request body is larger than %d bytes", g.maxBody))
	}
	writeErrorBody(w, r, httpStatus, st)
}

// streamError is the grpc-gateway stream error handler: it keeps the
// request id with the status, for the marshaler to show, and tells a
// client cut off by a shutdown to reconnect.
func (g *Gateway) streamError(ctx context.Context, err error) *status.Status {
	st, _ := statusOf(err)
	if g.streams.Err() != nil && st.Code() == codes.Canceled {
		st = status.New(codes.Unavailable, "the gateway is shutting down; reconnect in a moment")
	}
	if id := requestIDFrom(ctx); id != "" {
		if d, derr := st.WithDetails(&errdetails.RequestInfo{RequestId: id}); derr == nil {
			st = d
		}
	}
	return st
}

// routingError answers a path or method the rules do not serve.
func (g *Gateway) routingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var st *status.Status
	switch httpStatus {
	case http.StatusNotFound:
		st = status.Newf(codes.NotFound, "no REST path %s %s; every path is listed at /openapi.json", r.Method, r.URL.Path)
	case http.StatusMethodNotAllowed:
		st = status.Newf(codes.Unimplemented, "%s is not allowed on %s; every path is listed at /openapi.json", r.Method, r.URL.Path)
	case http.StatusBadRequest:
		st = status.Newf(codes.InvalidArgument, "malformed request to %s", r.URL.Path)
	default:
		st = status.New(codes.Internal, http.StatusText(httpStatus))
	}
	writeErrorBody(w, r, httpStatus, st)
}

// writeErrorBody writes st as the error body with httpStatus.
func writeErrorBody(w http.ResponseWriter, r *http.Request, httpStatus int, st *status.Status) {
	if st.Code() == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="carbondesk"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, httpStatus, bodyOf(st, requestIDFrom(r.Context())))
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(httpStatus)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// marshaler is protojson (runtime.JSONPb) except for a server stream's
// error line, which grpc-gateway hands over as {"error": google.rpc.Status}
// and which is written here as {"error": ErrorBody}.
type marshaler struct {
	*runtime.JSONPb
}

func (m *marshaler) Marshal(v any) ([]byte, error) {
	if chunk, ok := v.(map[string]proto.Message); ok && len(chunk) == 1 {
		if sp, ok := chunk["error"].(*spb.Status); ok {
			return json.Marshal(map[string]ErrorBody{"error": bodyOf(status.FromProto(sp), "")})
		}
	}
	return m.JSONPb.Marshal(v)
}
