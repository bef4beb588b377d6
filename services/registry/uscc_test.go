package registry

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateCreditCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string // normalised code
		problem string // "" when valid
	}{
		// The vectors of DOMAIN.md.
		{"public real code", "91110108551385082Q", "91110108551385082Q", ""},
		{"synthetic Wuchang", "91420106MA4K00010G", "91420106MA4K00010G", ""},
		{"wrong check character", "91420106MA4K00010H", "91420106MA4K00010H", "check character should be 'G', found 'H'"},

		// Normalisation.
		{"lower case", "91420106ma4k00010g", "91420106MA4K00010G", ""},
		{"surrounding space", "  91420106MA4K00010G\n", "91420106MA4K00010G", ""},
		{"spaces and hyphens", "9142 0106-MA4K-0001 0G", "91420106MA4K00010G", ""},
		{"full width", "９１４２０１０６ＭＡ４Ｋ０００１０Ｇ", "91420106MA4K00010G", ""},
		{"full width lower case", "９１４２０１０６ｍａ４ｋ０００１０ｇ", "91420106MA4K00010G", ""},
		{"full width with ideographic spaces and full-width hyphens", "９１４２\u3000０１０６－ＭＡ４Ｋ－０００１０Ｇ", "91420106MA4K00010G", ""},
		{"en dash and zero-width space", "91420106–MA4K\u200b00010G", "91420106MA4K00010G", ""},

		// Length.
		{"empty", "", "", "the code is empty; it has 18 characters"},
		{"only spaces", " \u3000 ", "", "the code is empty; it has 18 characters"},
		{"17 characters", "91420106MA4K0001G", "91420106MA4K0001G", "length 17 is not 18"},
		{"19 characters", "91420106MA4K00010GG", "91420106MA4K00010GG", "length 19 is not 18"},
		{"Chinese characters count as one each", "统一社会信用代码统一社会信用代码统一", "统一社会信用代码统一社会信用代码统一", "character '统' at position 1 is not allowed (only digits and the letters A–Y other than I, O, S, V)"},

		// Character set.
		{"I", "9142I106MA4K00010G", "9142I106MA4K00010G", "character 'I' at position 5 is not allowed (I, O, S, V, Z never appear)"},
		{"O", "91420106MO4K00010G", "91420106MO4K00010G", "character 'O' at position 10 is not allowed (I, O, S, V, Z never appear)"},
		{"S", "S1420106MA4K00010G", "S1420106MA4K00010G", "character 'S' at position 1 is not allowed (I, O, S, V, Z never appear)"},
		{"V lower case", "91420106MA4K0001v0", "91420106MA4K0001V0", "character 'V' at position 17 is not allowed (I, O, S, V, Z never appear)"},
		{"Z as check character", "91420106MA4K00010Z", "91420106MA4K00010Z", "character 'Z' at position 18 is not allowed (I, O, S, V, Z never appear)"},
		{"punctuation", "91420106MA4K.0010G", "91420106MA4K.0010G", "character '.' at position 13 is not allowed (only digits and the letters A–Y other than I, O, S, V)"},
		{"underscore", "91420106MA4K_0010G", "91420106MA4K_0010G", "character '_' at position 13 is not allowed (only digits and the letters A–Y other than I, O, S, V)"},

		// Administrative code.
		{"letter in position 4", "914A0106MA4K00010G", "914A0106MA4K00010G", "positions 3–8 must be digits (administrative code), found 'A' at position 4"},
		{"letter in position 8", "9142010BMA4K00010G", "9142010BMA4K00010G", "positions 3–8 must be digits (administrative code), found 'B' at position 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ValidateCreditCode(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("normalised code (-want +got):\n%s", diff)
			}
			var problem string
			if err != nil {
				var ce *CreditCodeError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCreditCode) {
					t.Fatalf("error %v (%T) is not a *CreditCodeError wrapping ErrCreditCode", err, err)
				}
				problem = ce.Problem
			}
			if diff := cmp.Diff(tt.problem, problem); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreditCodeCheckChar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		first17 string
		want    string
		wantErr bool
	}{
		{"91110108551385082", "91110108551385082Q", false},
		{"91420106MA4K00010", "91420106MA4K00010G", false},
		{"91420106MA4K0001", "", true},  // 16 characters
		{"91420106MA4K0001I", "", true}, // I is not in the set
	}
	for _, tt := range tests {
		got, err := CompleteCreditCode(tt.first17)
		if (err != nil) != tt.wantErr {
			t.Errorf("CompleteCreditCode(%q) error = %v, want error %v", tt.first17, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("CompleteCreditCode(%q) = %q, want %q", tt.first17, got, tt.want)
		}
	}
	// Every symbol can be a check character, 0 included (S mod 31 == 0).
	seen := map[byte]bool{}
	for i := range 31 * 31 {
		first17 := "914201060000000" + string(creditCodeCharset[i/31]) + string(creditCodeCharset[i%31])
		c, err := CreditCodeCheckChar(first17)
		if err != nil {
			t.Fatal(err)
		}
		seen[c] = true
		if _, err := ValidateCreditCode(first17 + string(c)); err != nil {
			t.Errorf("completed code does not validate: %v", err)
		}
	}
	if len(seen) != 31 {
		t.Errorf("check characters seen: %d symbols, want all 31", len(seen))
	}
}

func TestCreditCodeWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		warn bool
	}{
		{"91420106MA4K00010G", false}, // enterprise
		{"51420106MA4K00010G", true},  // social organisation: valid pair, not an enterprise
		{"98420106MA4K00010G", true},  // market regulation has no category 8
		{"B1420106MA4K00010G", true},  // no authority B
	}
	for _, tt := range tests {
		if got := CreditCodeWarning(tt.code); (got != "") != tt.warn {
			t.Errorf("CreditCodeWarning(%q) = %q, want a warning: %v", tt.code, got, tt.warn)
		}
	}
}

func FuzzValidateCreditCode(f *testing.F) {
	for _, s := range []string{
		"91110108551385082Q", "91420106MA4K00010G", "91420106MA4K00010H",
		"９１４２０１０６ＭＡ４Ｋ０００１０Ｇ", "9142 0106-MA4K-0001 0G", "", "\u3000", "ı", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ValidateCreditCode(s)
		if err != nil {
			if !errors.Is(err, ErrCreditCode) {
				t.Fatalf("error %v does not wrap ErrCreditCode", err)
			}
			return
		}
		if len(code) != creditCodeLen {
			t.Fatalf("valid code %q has %d bytes", code, len(code))
		}
		again, err := ValidateCreditCode(code)
		if err != nil || again != code {
			t.Fatalf("normalised %q re-validates as %q, %v", code, again, err)
		}
		if NormalizeCreditCode(code) != code {
			t.Fatalf("normalising %q again changes it", code)
		}
	})
}
