// Package contact checks the ways to reach a person that institutions and
// products carry: phone numbers and email addresses. Each check returns ""
// for a good value, else what is wrong with it, worded to follow the value
// in a field violation ("%q %s"). Which fields are required, and under what
// names, is each service's business.
package contact

import (
	"fmt"
	"net/mail"
	"strings"
)

// The limits.
const (
	MaxEmail       = 254 // bytes
	MinPhoneDigits = 7   // a local landline without area code
	MaxPhoneDigits = 15  // E.164
)

// CheckPhone accepts what people write for Chinese and international
// numbers: digits with spaces, hyphens, parentheses and a leading +, e.g.
// "027-8765 4321", "138 0000 0000", "+86 27 8765 4321".
func CheckPhone(p string) string {
	digits := 0
	for i, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '(' || r == ')':
		default:
			return fmt.Sprintf("has %q; use digits, spaces, hyphens, parentheses and a leading +", r)
		}
	}
	if digits < MinPhoneDigits || digits > MaxPhoneDigits {
		return fmt.Sprintf("has %d digits; a phone number has %d to %d", digits, MinPhoneDigits, MaxPhoneDigits)
	}
	return ""
}

// CheckEmail accepts a bare address with a dotted domain.
func CheckEmail(e string) string {
	if len(e) > MaxEmail {
		return fmt.Sprintf("is %d bytes long; at most %d", len(e), MaxEmail)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "is not an email address like name@example.cn"
	}
	at := strings.LastIndexByte(e, '@')
	if domain := e[at+1:]; !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "has no domain like example.cn after the @"
	}
	return ""
}
