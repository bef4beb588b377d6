package errs_test

import (
	"testing"

	"github.com/carbondesk/carbondesk/internal/errs"
)

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"", 3, ""},
		{"碳金融服务", 2, "碳金…"},
		{"碳金", 2, "碳金"},
	} {
		if got := errs.Shorten(tt.in, tt.n); got != tt.want {
			t.Errorf("Shorten(%q, %d) = %q; want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
