package contact_test

import (
	"strings"
	"testing"

	"github.com/carbondesk/carbondesk/internal/contact"
)

func TestCheckPhone(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"027-8765 4321", ""},
		{"138 0000 0000", ""},
		{"+86 27 8765 4321", ""},
		{"(027) 87654321", ""},
		{"1234567", ""},
		{"123456", "has 6 digits; a phone number has 7 to 15"},
		{"1234567890123456", "has 16 digits; a phone number has 7 to 15"},
		{"86+27 8765 4321", `has '+'; use digits, spaces, hyphens, parentheses and a leading +`},
		{"027.8765.4321", `has '.'; use digits, spaces, hyphens, parentheses and a leading +`},
	} {
		if got := contact.CheckPhone(tt.in); got != tt.want {
			t.Errorf("CheckPhone(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckEmail(t *testing.T) {
	long := strings.Repeat("a", 250) + "@x.cn"
	for _, tt := range []struct{ in, want string }{
		{"name@example.cn", ""},
		{"a.b+c@mail.example.com", ""},
		{long, "is 255 bytes long; at most 254"},
		{"Name <name@example.cn>", "is not an email address like name@example.cn"},
		{"name", "is not an email address like name@example.cn"},
		{"name@localhost", "has no domain like example.cn after the @"},
	} {
		if got := contact.CheckEmail(tt.in); got != tt.want {
			t.Errorf("CheckEmail(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
