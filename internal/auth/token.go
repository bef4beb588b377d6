package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/carbondesk/carbondesk/internal/errs"
)

// Defaults for the issuer and audience claims.
const (
	DefaultIssuer   = "carbondesk"
	DefaultAudience = "carbondesk"
	// MaxTokenBytes bounds what the parser reads.
	MaxTokenBytes = 4096
	// MaxTTL bounds a token's lifetime.
	MaxTTL = 30 * 24 * time.Hour
	// leeway absorbs clock skew between issuer and server.
	leeway = 30 * time.Second
)

// Claims is what a CarbonDesk token carries besides the registered claims.
type Claims struct {
	Role string `json:"role"`
	Org  string `json:"org,omitempty"`
	jwt.RegisteredClaims
}

// Issuer mints tokens with a private key: the development key of the single
// binary, or an operator's key for service accounts.
type Issuer struct {
	Key      ed25519.PrivateKey
	Issuer   string
	Audience string
	Now      func() time.Time
}

// Mint returns a signed token for the caller, valid for ttl.
func (i Issuer) Mint(c Caller, ttl time.Duration) (string, error) {
	if !c.Role.Valid() {
		return "", fmt.Errorf("auth: role %q: want one of staff, institution, enterprise", c.Role)
	}
	if c.Role != Staff && c.Org == "" {
		return "", fmt.Errorf("auth: a %s token needs an organisation (its unified social credit code)", c.Role)
	}
	if c.Subject == "" {
		return "", errors.New("auth: a token needs a subject")
	}
	if ttl > MaxTTL {
		return "", fmt.Errorf("auth: ttl %s is longer than the maximum %s", ttl, MaxTTL)
	}
	now := time.Now
	if i.Now != nil {
		now = i.Now
	}
	t := now().UTC()
	claims := Claims{
		Role: string(c.Role),
		Org:  c.Org,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			Issuer:    orDefault(i.Issuer, DefaultIssuer),
			Audience:  jwt.ClaimStrings{orDefault(i.Audience, DefaultAudience)},
			IssuedAt:  jwt.NewNumericDate(t),
			NotBefore: jwt.NewNumericDate(t),
			ExpiresAt: jwt.NewNumericDate(t.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(i.Key)
}

// Verifier checks tokens against one or more public keys (more than one
// while keys rotate).
type Verifier struct {
	Keys     []ed25519.PublicKey
	Issuer   string
	Audience string
	Now      func() time.Time
}

// Verify parses and checks a token: signature by one of the keys, EdDSA
// only, issuer, audience, expiry (required), not-before, and CarbonDesk's
// own claims. Every failure is errs.ErrUnauthenticated with a reason a
// person can act on; the token itself is never echoed.
func (v Verifier) Verify(token string) (Caller, error) {
	c, _, err := v.check(token)
	return c, err
}

// check parses and checks a token, returning its caller and claims.
func (v Verifier) check(token string) (Caller, *Claims, error) {
	fail := func(err error) (Caller, *Claims, error) { return Caller{}, nil, err }
	if token == "" {
		return fail(errs.Unauthenticated("missing bearer token: send 'authorization: Bearer <token>'"))
	}
	if len(token) > MaxTokenBytes {
		return fail(errs.Unauthenticated("token is %d bytes; at most %d are accepted", len(token), MaxTokenBytes))
	}
	if len(v.Keys) == 0 {
		return fail(errs.Unauthenticated("the server has no token keys configured"))
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(orDefault(v.Issuer, DefaultIssuer)),
		jwt.WithAudience(orDefault(v.Audience, DefaultAudience)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		// Only canonical base64: no second spelling of the same signed token.
		jwt.WithStrictDecoding(),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	var (
		claims Claims
		err    error
	)
	for _, key := range v.Keys {
		claims = Claims{}
		_, err = jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return key, nil }, opts...)
		if err == nil || !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break
		}
	}
	if err != nil {
		return fail(errs.Unauthenticated("token rejected: %s", reason(err)))
	}
	c := Caller{Subject: claims.Subject, Role: Role(claims.Role), Org: claims.Org}
	switch {
	case c.Subject == "" || len(c.Subject) > 256 || !utf8.ValidString(c.Subject):
		return fail(errs.Unauthenticated("token rejected: the subject (sub) is missing or malformed"))
	case !c.Role.Valid():
		return fail(errs.Unauthenticated("token rejected: role %q is not staff, institution or enterprise", truncate(claims.Role)))
	case c.Role != Staff && c.Org == "":
		return fail(errs.Unauthenticated("token rejected: a %s token must name its organisation (org)", c.Role))
	case len(c.Org) > 64 || !utf8.ValidString(c.Org):
		return fail(errs.Unauthenticated("token rejected: the organisation (org) is malformed"))
	case claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > MaxTTL:
		return fail(errs.Unauthenticated("token rejected: it lives longer than %s or has no issue time (iat); get a shorter-lived one", MaxTTL))
	}
	return c, &claims, nil
}

func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it has expired; get a new one"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "it is not valid yet (check the clocks)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "its signature does not match any key this server trusts"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "it was issued for another audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "it was issued by an issuer this server does not trust"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "it has no expiry (exp)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "it is not a well-formed JWT"
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "it is signed with an algorithm other than EdDSA"
	}
	return "it is not valid"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func truncate(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
