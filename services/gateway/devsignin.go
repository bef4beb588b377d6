package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/registry"
)

// DevTokenTTL is how long a development sign-in's token lives.
const DevTokenTTL = 12 * time.Hour

// DevSignIn lets a person at the single binary's console pick a demo
// identity and have the server mint its token with the data folder's
// development key. It exists only in development mode: a desk with
// configured token keys holds no private key and serves no sign-in.
type DevSignIn struct {
	// Issuer signs the tokens: the development key, with the issuer and
	// audience the desk verifies.
	Issuer auth.Issuer
	// Identities are the ones offered, by ID.
	Identities []Identity
}

// Identity is a demo identity a development token can be minted for.
type Identity struct {
	// ID names it in POST /api/dev/token: "staff",
	// "institution:<credit code>" or "enterprise:<credit code>".
	ID   string    `json:"id"`
	Role auth.Role `json:"role"`
	// Org is the organisation's unified social credit code (empty for staff).
	Org    string `json:"org,omitempty"`
	Name   string `json:"name"`
	NameEn string `json:"nameEn,omitempty"`
	// Kind is the institution's kind or the enterprise's sector, e.g.
	// "BANK" or "STEEL".
	Kind string `json:"kind,omitempty"`
}

// subject is the token's sub, as 'carbondesk token' names it.
func (id Identity) subject() string {
	if id.Org == "" {
		return "dev-" + string(id.Role)
	}
	return "dev-" + string(id.Role) + "-" + id.Org
}

// SeedIdentities reads the demo identities from the seeds (package seeds):
// district staff, the first ACTIVE institution of each kind, and every
// seeded enterprise.
func SeedIdentities(fsys fs.FS) ([]Identity, error) {
	var reg struct {
		Institutions []struct {
			CreditCode string `json:"credit_code"`
			NameZh     string `json:"name_zh"`
			NameEn     string `json:"name_en"`
			Kind       string `json:"kind"`
			State      string `json:"state"`
		} `json:"institutions"`
	}
	var mat struct {
		Enterprises []struct {
			CreditCode string `json:"credit_code"`
			Name       string `json:"name"`
			Sector     string `json:"sector"`
		} `json:"enterprises"`
	}
	for path, v := range map[string]any{registry.SeedPath: &reg, matching.SeedPath: &mat} {
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, fmt.Errorf("gateway: demo identities: %w", err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			return nil, fmt.Errorf("gateway: demo identities: %s: %w", path, err)
		}
	}
	ids := []Identity{{ID: "staff", Role: auth.Staff, Name: "武昌区碳金融服务台工作人员", NameEn: "District staff"}}
	kinds := map[string]bool{}
	for _, in := range reg.Institutions {
		if in.State != "ACTIVE" || kinds[in.Kind] {
			continue
		}
		kinds[in.Kind] = true
		ids = append(ids, Identity{ID: "institution:" + in.CreditCode, Role: auth.Institution, Org: in.CreditCode,
			Name: in.NameZh, NameEn: in.NameEn, Kind: in.Kind})
	}
	for _, e := range mat.Enterprises {
		ids = append(ids, Identity{ID: "enterprise:" + e.CreditCode, Role: auth.Enterprise, Org: e.CreditCode,
			Name: e.Name, Kind: e.Sector})
	}
	return ids, nil
}

// devRoutes serves /api/: the development sign-in when it is on.
func (g *Gateway) devRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/dev/identities", g.devIdentities)
	mux.HandleFunc("POST /api/dev/token", g.devToken)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrorBody(w, r, http.StatusNotFound, status.Newf(codes.NotFound, "no path %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (g *Gateway) devOff(w http.ResponseWriter, r *http.Request) bool {
	if g.dev != nil {
		return false
	}
	writeErrorBody(w, r, http.StatusNotFound, status.New(codes.NotFound,
		"development sign-in is off: this desk verifies tokens from its configured issuer; sign in with a token from there"))
	return true
}

// devIdentities answers {"identities": [...]}.
func (g *Gateway) devIdentities(w http.ResponseWriter, r *http.Request) {
	if g.devOff(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Identity{"identities": g.dev.Identities})
}

// DevTokenRequest is POST /api/dev/token's body.
type DevTokenRequest struct {
	Identity string `json:"identity"`
}

// DevTokenResponse is POST /api/dev/token's answer.
type DevTokenResponse struct {
	Token     string    `json:"token"`
	Role      auth.Role `json:"role"`
	Org       string    `json:"org,omitempty"`
	Name      string    `json:"name"`
	Subject   string    `json:"subject"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// devToken mints a token for one of the identities. The body must be JSON,
// so a plain HTML form on another site cannot post it.
func (g *Gateway) devToken(w http.ResponseWriter, r *http.Request) {
	if g.devOff(w, r) {
		return
	}
	invalid := func(field, format string, args ...any) {
		st := status.New(codes.InvalidArgument, "invalid request: "+field+": "+fmt.Sprintf(format, args...))
		writeErrorBody(w, r, http.StatusBadRequest, withViolation(st, field, fmt.Sprintf(format, args...)))
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeErrorBody(w, r, http.StatusUnsupportedMediaType, status.New(codes.InvalidArgument, `send the body as JSON ("Content-Type: application/json")`))
		return
	}
	var req DevTokenRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeErrorBody(w, r, http.StatusRequestEntityTooLarge, status.Newf(codes.InvalidArgument, "the request body is larger than %d bytes", g.maxBody))
			return
		}
		writeErrorBody(w, r, http.StatusBadRequest, status.Newf(codes.InvalidArgument, `the body is not {"identity": "..."}: %v`, err))
		return
	}
	if req.Identity == "" {
		invalid("identity", "required: one of the ids GET /api/dev/identities lists")
		return
	}
	var id *Identity
	for i := range g.dev.Identities {
		if g.dev.Identities[i].ID == req.Identity {
			id = &g.dev.Identities[i]
			break
		}
	}
	if id == nil {
		invalid("identity", "%q is not a demo identity; GET /api/dev/identities lists them", errs.Shorten(req.Identity, 64))
		return
	}
	now := time.Now()
	iss := g.dev.Issuer
	iss.Now = func() time.Time { return now }
	tok, err := iss.Mint(auth.Caller{Subject: id.subject(), Role: id.Role, Org: id.Org}, DevTokenTTL)
	if err != nil {
		g.log.ErrorContext(r.Context(), "gateway: dev sign-in: mint", "identity", id.ID, "err", err)
		writeErrorBody(w, r, http.StatusInternalServerError, status.New(codes.Internal, "internal error"))
		return
	}
	g.log.InfoContext(r.Context(), "development sign-in", "identity", id.ID, "role", id.Role, "org", id.Org, "request_id", requestIDFrom(r.Context()))
	writeJSON(w, http.StatusOK, DevTokenResponse{Token: tok, Role: id.Role, Org: id.Org, Name: id.Name, Subject: id.subject(),
		ExpiresAt: now.Add(DevTokenTTL).UTC().Truncate(time.Second)})
}
