// Package contact checks the ways to reach a person that institutions,
// products and people carry: phone numbers and email addresses. Each check
// returns "" for a good value, else what is wrong with it, worded to follow
// the value in a field violation ("%q %s"). Which fields are required, and
// under what names, is each service's business.
//
// It also holds the two things every service does with a person's contact
// beyond checking it: the key two spellings of one number or address share
// (PhoneKey, EmailKey), and the masked form shown to callers who may not
// see it in full (MaskPhone, MaskEmail).
package contact

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
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

// PhoneKey is the digits of a phone number: the form two spellings of one
// number share. "+86 138-0000-1234", "0086 13800001234" and "138 0000 1234"
// all give "13800001234": the country code 86 is dropped from a mainland
// mobile number (eleven digits starting with 1). Anything else keeps all its
// digits.
func PhoneKey(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	for _, cc := range []string{"0086", "86"} {
		if rest, ok := strings.CutPrefix(d, cc); ok && len(rest) == 11 && rest[0] == '1' {
			return rest
		}
	}
	return d
}

// EmailKey is an address lower-cased and trimmed: the form two spellings of
// one address share.
func EmailKey(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// MaskPhone is a phone number as shown to a caller who may not see it: at
// most the first three digits (of eleven or more: a mobile prefix or an
// area code) and the last four (the last two of a number shorter than
// eight digits), every other digit a '*', separators dropped:
// "138 0000 1234" → "138****1234". At least four digits are always hidden.
// "" stays "".
func MaskPhone(p string) string {
	d := PhoneKey(p)
	n := len(d)
	if n == 0 {
		return ""
	}
	head, tail := 0, 4
	switch {
	case n >= 11:
		head = 3
	case n < 8:
		tail = 2
	}
	if head+tail+4 > n { // shorter than any valid number: hide it all
		head, tail = 0, 0
	}
	return d[:head] + strings.Repeat("*", n-head-tail) + d[n-tail:]
}

// MaskEmail is an address as shown to a caller who may not see it: the
// local part's first character and "***", then the domain, which names an
// organisation rather than a person: "wang.xl@chujiang.example" →
// "w***@chujiang.example". A local part of one or two characters is all
// hidden; "" stays "".
func MaskEmail(e string) string {
	e = strings.TrimSpace(e)
	if e == "" {
		return ""
	}
	at := strings.LastIndexByte(e, '@')
	if at < 0 {
		return "***"
	}
	local, domain := e[:at], e[at+1:]
	if utf8.RuneCountInString(local) <= 2 {
		return "***@" + domain
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "***@" + domain
}
