// Package paging holds what every List RPC does with its page_size and
// page_token fields: the size clamping, the opaque token (the last id
// returned and a fingerprint of the filters it was issued for), and the loop
// that reads one more record than a page from the store to learn whether
// another page follows.
//
// It knows nothing of any service's filters or records: a service computes
// its filters' fingerprint (Fingerprint) and decodes the records it gets.
package paging

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// The page sizes: 0 asks for DefaultSize, more than MaxSize gets MaxSize.
const (
	DefaultSize = 50
	MaxSize     = 200
)

// Size is the page size a request's page_size asks for. A negative one is
// a violation of page_size.
func Size(v *errs.Violations, pageSize int32) int {
	n := int(pageSize)
	switch {
	case n < 0:
		v.Add("page_size", "%d is negative; give 1 to %d, or 0 for %d", n, MaxSize, DefaultSize)
	case n == 0:
		n = DefaultSize
	case n > MaxSize:
		n = MaxSize
	}
	return n
}

// Token is what next_page_token carries, base64url-encoded JSON: the last
// id returned and the fingerprint of the filters.
type Token struct {
	After  string `json:"a"`
	Filter string `json:"f"`
}

// Encode is the token as a caller sees it.
func (t Token) Encode() string {
	b, _ := json.Marshal(t) // two strings cannot fail to marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode reads a token Encode made; false for anything else, including a
// token missing its id or its fingerprint.
func Decode(s string) (Token, bool) {
	t, ok := decode(s)
	if !ok || t.Filter == "" {
		return Token{}, false
	}
	return t, true
}

// decode reads a token that has at least an id.
func decode(s string) (Token, bool) {
	var t Token
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &t) != nil || t.After == "" {
		return Token{}, false
	}
	return t, true
}

// Fingerprint binds a token to the filters it was issued for: a short hash
// of the filters written out.
func Fingerprint(filters []byte) string {
	h := sha256.Sum256(filters)
	return hex.EncodeToString(h[:8])
}

// Check says how a service checks a page_token.
type Check struct {
	// Refilter tells a caller whose token was issued for other filters
	// what to repeat, e.g. "repeat the first call's filters".
	Refilter string
	// FilterOptional takes a token that carries an id but no fingerprint as
	// issued for other filters, rather than as not issued by the service.
	FilterOptional bool
}

// After checks a request's page_token against the fingerprint of its
// filters and returns the id to list after: "" for no token, or for one
// that is added to v as a violation of page_token.
func (c Check) After(v *errs.Violations, token, fingerprint string) string {
	if token == "" {
		return ""
	}
	t, ok := Decode(token)
	if c.FilterOptional {
		t, ok = decode(token)
	}
	switch {
	case !ok:
		v.Add("page_token", "%q is not a token this service issued; pass next_page_token unchanged, or none for the first page", errs.Shorten(token, 80))
	case t.Filter != fingerprint:
		v.Add("page_token", "was issued for other filters; %s, or start again without a token", c.Refilter)
	default:
		return t.After
	}
	return ""
}

// Lister is the part of store.Store paging reads through.
type Lister interface {
	List(ctx context.Context, kind string, q store.Query) (store.Page, error)
}

// List reads up to size records of kind that q selects, and the token of
// the next page, "" on the last one. It asks for one more record than a
// page: if it comes, a next page exists and the token points at the last
// record returned. The store may return fewer matches than asked while it
// still has records to scan, hence the loop. q.Limit is ignored; store
// errors are returned unwrapped.
func List(ctx context.Context, st Lister, kind string, q store.Query, size int, fingerprint string) ([]store.Record, string, error) {
	want := size + 1
	var got []store.Record
	for len(got) < want {
		q.Limit = want - len(got)
		page, err := st.List(ctx, kind, q)
		if err != nil {
			return nil, "", err
		}
		got = append(got, page.Records...)
		if page.Next == "" || (len(page.Records) == 0 && page.Next == q.After) {
			break // the end, or a store that makes no progress
		}
		q.After = page.Next
	}
	if len(got) <= size {
		return got, "", nil
	}
	got = got[:size]
	return got, Token{After: got[size-1].ID, Filter: fingerprint}.Encode(), nil
}
