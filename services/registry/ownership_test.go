package registry

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestUpdateOwnership: an update of another organisation's institution
// answers NotFound, exactly as for an id that does not exist, whatever
// version it names. A version check answered first would tell the caller
// the institution exists, and its version.
func TestUpdateOwnership(t *testing.T) {
	t.Parallel()
	testenv.EachStore(t, func(t *testing.T, st store.Store) {
		s, _ := newTestServer(t, st)
		for _, state := range []State{StatePending, StateActive, StateSuspended, StateRejected} {
			in := reviewTo(t, s, state)
			owner := auth.WithCaller(t.Context(), auth.Caller{Subject: "owner", Role: auth.Institution, Org: in.GetCreditCode()})
			other := auth.WithCaller(t.Context(), auth.Caller{Subject: "other", Role: auth.Institution, Org: testCode(t)})
			for _, version := range []int64{in.GetVersion() - 1, in.GetVersion(), in.GetVersion() + 1, 1 << 40} {
				if version <= 0 {
					continue
				}
				req := func(id string) *registryv1.UpdateInstitutionRequest {
					return &registryv1.UpdateInstitutionRequest{Id: id, Version: version, Institution: &registryv1.Institution{NameEn: "Taken over"}}
				}
				_, err := s.UpdateInstitution(other, req(in.GetId()))
				_, errMissing := s.UpdateInstitution(other, req("01JNOSUCHID"))
				if code(err) != codes.NotFound || message(err) != fmt.Sprintf("institution %q not found", in.GetId()) || code(errMissing) != codes.NotFound {
					t.Errorf("%s institution, version %d read, by another organisation: %v; want NotFound as for a missing id (%v)", state, version, err, errMissing)
				}
				// The owner gets the truth about versions.
				_, err = s.UpdateInstitution(owner, req(in.GetId()))
				if want := map[bool]codes.Code{true: codes.OK, false: codes.Aborted}[version == in.GetVersion()]; code(err) != want {
					t.Errorf("%s institution, version %d read, by its owner: %v; want %s", state, version, err, want)
				}
				r, err := s.GetInstitution(owner, &registryv1.GetInstitutionRequest{Id: in.GetId()})
				if err != nil {
					t.Fatal(err)
				}
				in = r.GetInstitution()
			}
		}
	})
}
