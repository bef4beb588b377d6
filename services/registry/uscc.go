package registry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// The unified social credit code (統一社會信用代碼, GB 32100-2015): 18
// characters over a 31-symbol set. Position 1 is the registration authority,
// 2 the category, 3–8 the administrative division (GB/T 2260), 9–17 the
// organisation code and 18 a check character over the first 17.

// creditCodeCharset lists the symbols in value order: a symbol's value is its
// index. I, O, S, V and Z are left out because they read like 1, 0, 5, U and 2.
const creditCodeCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// creditCodeLen is the length of a normalised code.
const creditCodeLen = 18

// creditCodeWeights are 3^(i-1) mod 31 for positions 1–17.
var creditCodeWeights = [creditCodeLen - 1]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// ErrCreditCode is wrapped by every error ValidateCreditCode returns.
var ErrCreditCode = errors.New("invalid unified social credit code")

// CreditCodeError says what is wrong with a code. errors.Is(err,
// ErrCreditCode) holds for it.
type CreditCodeError struct {
	Code    string // the code after normalisation
	Problem string // e.g. "length 17 is not 18"
}

func (e *CreditCodeError) Error() string {
	return fmt.Sprintf("credit code %q: %s", e.Code, e.Problem)
}

// Unwrap makes errors.Is(err, ErrCreditCode) true.
func (e *CreditCodeError) Unwrap() error { return ErrCreditCode }

func badCode(code, format string, args ...any) error {
	return &CreditCodeError{Code: code, Problem: fmt.Sprintf(format, args...)}
}

// NormalizeCreditCode puts a code as people type or paste it into the form
// it is stored and compared in: full-width characters folded to half-width
// (a code typed with a Chinese input method often arrives as "９１４２…"),
// whitespace (including the ideographic space U+3000), hyphens and dashes of
// any width, and invisible format characters (zero-width spaces, byte-order
// marks from spreadsheets) dropped, then upper-cased. It does not validate.
func NormalizeCreditCode(s string) string {
	s = width.Narrow.String(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), unicode.Is(unicode.Pd, r), r == '\u2212', unicode.Is(unicode.Cf, r):
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// ValidateCreditCode normalises s and checks it. It returns the normalised
// code, or an error wrapping ErrCreditCode that names the first problem found,
// in this order: the length, a character outside the set, a non-digit in the
// administrative code (positions 3–8), the check character. Positions in
// messages count from 1, as the standard does.
//
// Only those four rules reject a code. Whether the authority and category
// pair (positions 1–2) is one the standard defines is left to
// CreditCodeWarning: the registers behind the codes have added pairs over
// the years, and refusing a real institution over a table we keep would be
// worse than letting staff look twice.
func ValidateCreditCode(s string) (string, error) {
	code := NormalizeCreditCode(s)
	runes := []rune(code)
	if len(runes) != creditCodeLen {
		if len(runes) == 0 {
			return code, badCode(code, "the code is empty; it has 18 characters")
		}
		return code, badCode(code, "length %d is not 18", len(runes))
	}
	for i, r := range runes {
		if creditCodeValue(r) >= 0 {
			continue
		}
		if strings.ContainsRune("IOSVZ", r) {
			return code, badCode(code, "character %s at position %d is not allowed (I, O, S, V, Z never appear)", strconv.QuoteRune(r), i+1)
		}
		return code, badCode(code, "character %s at position %d is not allowed (only digits and the letters A–Y other than I, O, S, V)", strconv.QuoteRune(r), i+1)
	}
	for i := 2; i < 8; i++ {
		if runes[i] < '0' || runes[i] > '9' {
			return code, badCode(code, "positions 3–8 must be digits (administrative code), found %s at position %d", strconv.QuoteRune(runes[i]), i+1)
		}
	}
	// Every rune is now a single ASCII byte, so the string indexes by position.
	want, _ := CreditCodeCheckChar(code[:creditCodeLen-1])
	if got := code[creditCodeLen-1]; got != want {
		return code, badCode(code, "check character should be %q, found %q", want, got)
	}
	return code, nil
}

// CreditCodeCheckChar computes the 18th character for the first 17 of a
// code (already normalised). It is how seeds and tests make synthetic codes
// that pass ValidateCreditCode.
func CreditCodeCheckChar(first17 string) (byte, error) {
	if len(first17) != creditCodeLen-1 {
		return 0, badCode(first17, "check character needs 17 characters, got %d", len(first17))
	}
	sum := 0
	for i := range len(first17) {
		v := creditCodeValue(rune(first17[i]))
		if v < 0 {
			return 0, badCode(first17, "character %q at position %d is not in the code's character set", first17[i], i+1)
		}
		sum += v * creditCodeWeights[i]
	}
	c := (31 - sum%31) % 31 // 31 means 0
	return creditCodeCharset[c], nil
}

// CompleteCreditCode appends the check character to the first 17 characters
// of a code.
func CompleteCreditCode(first17 string) (string, error) {
	c, err := CreditCodeCheckChar(first17)
	if err != nil {
		return "", err
	}
	return first17 + string(c), nil
}

func creditCodeValue(r rune) int {
	if r > 'Z' {
		return -1
	}
	return strings.IndexRune(creditCodeCharset, r)
}

// creditCodeCategories are the registration authorities of GB 32100-2015
// (position 1) with the categories (position 2) each defines. Kept as a
// warning table only; see ValidateCreditCode.
var creditCodeCategories = map[byte]string{
	'1': "1239",   // establishment administration: organs, public institutions, mass organisations
	'2': "19",     // foreign affairs
	'3': "123459", // justice: law firms, notaries, legal services, forensics, arbitration
	'4': "19",     // culture
	'5': "1239",   // civil affairs: social organisations, private non-enterprise units, foundations
	'6': "129",    // tourism
	'7': "129",    // religious affairs
	'8': "19",     // trade unions
	'9': "123",    // market regulation: enterprises, individual businesses, farmers' co-operatives
	'A': "19",     // military establishment
	'N': "12349",  // agriculture: collective economic organisations
	'Y': "1",      // other
}

// CreditCodeWarning returns a note for staff when a valid code's authority
// and category pair is not one the standard lists, or when it is not an
// enterprise (9-1) code, which nearly every financial institution has. It
// returns "" when there is nothing to say. It never rejects.
func CreditCodeWarning(code string) string {
	if len(code) != creditCodeLen {
		return ""
	}
	auth, cat := code[0], code[1]
	cats, ok := creditCodeCategories[auth]
	switch {
	case !ok:
		return fmt.Sprintf("registration authority %q (position 1) is not one GB 32100-2015 lists", auth)
	case strings.IndexByte(cats, cat) < 0:
		return fmt.Sprintf("category %q (position 2) is not one GB 32100-2015 lists for authority %q", cat, auth)
	case auth != '9' || cat != '1':
		return fmt.Sprintf("code %c%c… is not an enterprise code (91…); check the institution is registered as an enterprise", auth, cat)
	}
	return ""
}
