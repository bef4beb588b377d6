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

func TestPhoneKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"138 0000 1234", "13800001234"},
		{"+86 138-0000-1234", "13800001234"},
		{"0086 13800001234", "13800001234"},
		{"8613800001234", "13800001234"},
		{"027-8765 4321", "02787654321"},
		{"+86 27 8765 4321", "862787654321"}, // not a mobile: the country code stays
		{"", ""},
	} {
		if got := contact.PhoneKey(tt.in); got != tt.want {
			t.Errorf("PhoneKey(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"138 0000 1234", "138****1234"},
		{"+86 138-0000-1234", "138****1234"},
		{"027-8765 4321", "027****4321"},
		{"8765 4321", "****4321"},
		{"1234567", "*****67"},
		{"123456", "****56"},
		{"12345", "*****"},
		{"+44 20 7946 0958 12", "442*******5812"},
		{"", ""},
	} {
		got := contact.MaskPhone(tt.in)
		if got != tt.want {
			t.Errorf("MaskPhone(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if hidden := strings.Count(got, "*"); got != "" && hidden < 4 {
			t.Errorf("MaskPhone(%q) = %q hides %d digits; at least 4", tt.in, got, hidden)
		}
		if d := contact.PhoneKey(tt.in); d != "" && strings.Contains(got, d) {
			t.Errorf("MaskPhone(%q) = %q shows the whole number", tt.in, got)
		}
	}
}

func TestMaskEmail(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"wang.xl@chujiang.example", "w***@chujiang.example"},
		{"王晓岚@例子.中国", "王***@例子.中国"},
		{"ab@x.cn", "***@x.cn"},
		{"no-at-sign", "***"},
		{"", ""},
	} {
		got := contact.MaskEmail(tt.in)
		if got != tt.want {
			t.Errorf("MaskEmail(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if tt.in != "" && strings.Contains(got, tt.in) {
			t.Errorf("MaskEmail(%q) = %q shows the whole address", tt.in, got)
		}
	}
}
