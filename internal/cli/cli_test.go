package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestWidth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"BANK", 4},
		{"楚江银行", 8},
		{"中南路 88 号", 12},
		{"（第三期）", 10}, // fullwidth brackets
	} {
		if got := Width(tc.in); got != tc.want {
			t.Errorf("Width(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestTableAlignsWideText(t *testing.T) {
	tb := NewTable("NAME", "STATE")
	tb.Row("楚江碳金融银行", "ACTIVE")
	tb.Row("Bank", "PENDING")
	var b bytes.Buffer
	if err := tb.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "NAME            STATE\n" +
		"楚江碳金融银行  ACTIVE\n" +
		"Bank            PENDING\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("碳排放管理员培训", 9); got != "碳排放管…" || Width(got) > 9 {
		t.Errorf("Truncate = %q (width %d)", got, Width(got))
	}
	if got := Truncate("short", 9); got != "short" {
		t.Errorf("Truncate(short) = %q", got)
	}
}

func TestErrorListsFieldViolations(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "invalid request: credit_code: bad; name_zh: is required").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: "credit_code", Description: "bad"},
			{Field: "name_zh", Description: "is required"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := Wrap("register institution", st.Err()).Error()
	want := "register institution: InvalidArgument: invalid request\n  credit_code: bad\n  name_zh: is required"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if Wrap("x", nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	if got := Wrap("dial", errString("refused")).Error(); !strings.HasPrefix(got, "dial: refused") {
		t.Errorf("plain error: %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
