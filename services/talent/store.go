package talent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Record kinds in the talent service's store namespace.
const (
	// kindEvent: one event per record, data = a marshalled talentv1.Event
	// (without its seats, which the roster holds).
	kindEvent = "event"
	// kindRoster: the event's fence and seat counts (JSON roster), id = the
	// event id. Rewritten by every change to the event or its registrations.
	kindRoster = "roster"
	// kindRegistration: data = a marshalled talentv1.Registration, id =
	// "<event id>-<position>".
	kindRegistration = "registration"
	// kindClaim: one person's place at one event, id = "<event id>|<key>"
	// (personKeys), data = the registration id. Written with MustNotExist
	// when the registration is made, deleted when it is cancelled.
	kindClaim = "claim"
	// kindTalent: data = a marshalled talentv1.Talent.
	kindTalent = "talent"
	// kindHours: one ledger entry, id = the registration id, data = a
	// marshalled talentv1.HoursEntry.
	kindHours = "hours"
	// kindInstitution: the service's view of one institution (institutions.go).
	kindInstitution = "institution"
	// kindSeed marks a demo object as loaded: id = the seed's key.
	kindSeed = "seed"
)

// Index term prefixes.
const (
	termState    = "state="   // events, registrations
	termHost     = "host="    // events: host institution id, or hostDistrict
	termKind     = "kind="    // events
	termCategory = "cat="     // events, by topic
	termSector   = "sec="     // events, by topic
	termJob      = "job="     // events, by topic
	termAttn     = "attn=1"   // events staff should look at
	termPublic   = "pub=1"    // events published at least once
	termDrain    = "drain=1"  // rosters of CANCELLED events with live registrations left
	termEvent    = "event="   // registrations of an event
	termEvState  = "es="      // registrations of an event in a state: es=<event>.<STATE>
	termOrg      = "org="     // registrations by registrant org; talents by organisation
	termTalent   = "talent="  // registrations and ledger entries of a talent
	termSkill    = "skill="   // talents, by folded skill
	termCert     = "cert="    // talents, by certified job type
	hostDistrict = "district" // termHost of district events
)

func eventTerms(e *talentv1.Event) []string {
	host := e.GetHostInstitutionId()
	if host == "" {
		host = hostDistrict
	}
	t := []string{termState + key(e.GetState()), termHost + host, termKind + key(e.GetKind())}
	if e.GetNeedsAttention() {
		t = append(t, termAttn)
	}
	if e.GetPublishTime() != nil {
		t = append(t, termPublic)
	}
	for _, c := range e.GetTopics().GetCategories() {
		t = append(t, termCategory+key(c))
	}
	for _, s := range e.GetTopics().GetSectors() {
		t = append(t, termSector+key(s))
	}
	for _, j := range e.GetTopics().GetJobTypes() {
		t = append(t, termJob+key(j))
	}
	return t
}

func registrationTerms(r *talentv1.Registration) []string {
	t := []string{termEvent + r.GetEventId(), evStateTerm(r.GetEventId(), r.GetState()), termState + key(r.GetState())}
	if r.GetRegistrantOrg() != "" {
		t = append(t, termOrg+r.GetRegistrantOrg())
	}
	if id := r.GetAttendee().GetTalentId(); id != "" {
		t = append(t, termTalent+id)
	}
	return t
}

func evStateTerm(eventID string, s talentv1.RegistrationState) string {
	return termEvState + eventID + "." + key(s)
}

func talentTerms(t *talentv1.Talent) []string {
	terms := []string{termOrg + orgTerm(t.GetOrganizationCreditCode())}
	for _, s := range t.GetSkills() {
		terms = append(terms, termSkill+foldText(s))
	}
	for _, c := range t.GetCertifications() {
		terms = append(terms, termCert+key(c.GetJobType()))
	}
	return terms
}

// orgTerm is the organisation part of a talent's org term: "-" for a
// profile staff keep without an organisation.
func orgTerm(code string) string {
	if code == "" {
		return "-"
	}
	return code
}

// registrationID is "<event id>-<position>", zero-padded so ids sort in
// order of arrival.
func registrationID(eventID string, position int32) string {
	return fmt.Sprintf("%s-%06d", eventID, position)
}

// eventOf is the event id a registration id names.
func eventOf(registrationID string) (string, bool) {
	i := strings.LastIndexByte(registrationID, '-')
	if i <= 0 || len(registrationID)-i-1 != 6 {
		return "", false
	}
	return registrationID[:i], true
}

// personKeys are the keys a person is known by at one event: their talent
// profile, their phone's digits and their e-mail, lower-cased.
func personKeys(a *talentv1.Attendee) []string {
	var keys []string
	if id := a.GetTalentId(); id != "" {
		keys = append(keys, "t:"+id)
	}
	if p := contact.PhoneKey(a.GetPhone()); p != "" {
		keys = append(keys, "p:"+p)
	}
	if e := contact.EmailKey(a.GetEmail()); e != "" {
		keys = append(keys, "e:"+e)
	}
	return keys
}

func claimID(eventID, key string) string { return eventID + "|" + key }

// roster is an event's fence and seat counts (see the package doc).
type roster struct {
	Next       int32 `json:"next"` // the last position issued
	Confirmed  int32 `json:"confirmed"`
	Attended   int32 `json:"attended"`
	Waitlisted int32 `json:"waitlisted"`
	Cancelled  int32 `json:"cancelled"`
	Promoted   int32 `json:"promoted"`
}

// taken is the seats held: CONFIRMED plus ATTENDED.
func (r roster) taken() int32 { return r.Confirmed + r.Attended }

// live is the registrations still in play before the event: CONFIRMED and
// WAITLISTED.
func (r roster) live() int32 { return r.Confirmed + r.Waitlisted }

func (r roster) seats() *talentv1.Seats {
	return &talentv1.Seats{Taken: r.taken(), Confirmed: r.Confirmed, Attended: r.Attended, Waitlisted: r.Waitlisted,
		Cancelled: r.Cancelled, Promoted: r.Promoted, Registrations: r.Next}
}

func decodeRoster(rec store.Record) (roster, error) {
	var r roster
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return r, fmt.Errorf("talent: decode roster %s: %w", rec.ID, err)
	}
	return r, nil
}

func decodeEvent(rec store.Record) (*talentv1.Event, error) {
	e := &talentv1.Event{}
	if err := proto.Unmarshal(rec.Data, e); err != nil {
		return nil, fmt.Errorf("talent: decode event %s: %w", rec.ID, err)
	}
	e.Version = rec.Version
	return e, nil
}

func decodeRegistration(rec store.Record) (*talentv1.Registration, error) {
	r := &talentv1.Registration{}
	if err := proto.Unmarshal(rec.Data, r); err != nil {
		return nil, fmt.Errorf("talent: decode registration %s: %w", rec.ID, err)
	}
	r.Version = rec.Version
	return r, nil
}

func decodeTalent(rec store.Record) (*talentv1.Talent, error) {
	t := &talentv1.Talent{}
	if err := proto.Unmarshal(rec.Data, t); err != nil {
		return nil, fmt.Errorf("talent: decode talent %s: %w", rec.ID, err)
	}
	t.Version = rec.Version
	return t, nil
}

func decodeHours(rec store.Record) (*talentv1.HoursEntry, error) {
	h := &talentv1.HoursEntry{}
	if err := proto.Unmarshal(rec.Data, h); err != nil {
		return nil, fmt.Errorf("talent: decode hours entry %s: %w", rec.ID, err)
	}
	return h, nil
}

// getEvent reads one event with its seats; NotFound names the id.
func (s *Server) getEvent(ctx context.Context, id string) (*talentv1.Event, error) {
	rec, err := s.st.Get(ctx, kindEvent, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("event", id)
	}
	if err != nil {
		return nil, fmt.Errorf("talent: get event %s: %w", id, err)
	}
	return decodeEvent(rec)
}

// getRoster reads an event's roster and its store version (0: none yet).
func (s *Server) getRoster(ctx context.Context, eventID string) (roster, int64, error) {
	rec, err := s.st.Get(ctx, kindRoster, eventID)
	if errors.Is(err, store.ErrNotFound) {
		return roster{}, 0, nil
	}
	if err != nil {
		return roster{}, 0, fmt.Errorf("talent: get roster %s: %w", eventID, err)
	}
	r, err := decodeRoster(rec)
	return r, rec.Version, err
}

// eventWithSeats reads an event and fills in its seats.
func (s *Server) eventWithSeats(ctx context.Context, id string) (*talentv1.Event, error) {
	e, err := s.getEvent(ctx, id)
	if err != nil {
		return nil, err
	}
	r, _, err := s.getRoster(ctx, id)
	if err != nil {
		return nil, err
	}
	e.Seats = r.seats()
	return e, nil
}

// getRegistration reads one registration; NotFound names the id.
func (s *Server) getRegistration(ctx context.Context, id string) (*talentv1.Registration, error) {
	rec, err := s.st.Get(ctx, kindRegistration, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("registration", id)
	}
	if err != nil {
		return nil, fmt.Errorf("talent: get registration %s: %w", id, err)
	}
	return decodeRegistration(rec)
}

// getTalent reads one talent; NotFound names the id.
func (s *Server) getTalent(ctx context.Context, id string) (*talentv1.Talent, error) {
	rec, err := s.st.Get(ctx, kindTalent, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("talent", id)
	}
	if err != nil {
		return nil, fmt.Errorf("talent: get talent %s: %w", id, err)
	}
	return decodeTalent(rec)
}

// scan calls fn for every record of kind under an index term, in id order,
// a page at a time.
func (s *Server) scan(ctx context.Context, kind, term string, fn func(store.Record) error) error {
	q := store.Query{Index: term, Limit: store.MaxLimit}
	for {
		page, err := s.st.List(ctx, kind, q)
		if err != nil {
			return fmt.Errorf("talent: list %s %q: %w", kind, term, err)
		}
		for _, rec := range page.Records {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if page.Next == "" || (len(page.Records) == 0 && page.Next == q.After) {
			return nil
		}
		q.After = page.Next
	}
}

// scanEvents calls fn for every event under an index term, in id order.
func (s *Server) scanEvents(ctx context.Context, term string, fn func(*talentv1.Event) error) error {
	return s.scan(ctx, kindEvent, term, func(rec store.Record) error {
		e, err := decodeEvent(rec)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// waitlistRanks maps each WAITLISTED registration of an event to its place
// in the waitlist (1: next to get a seat).
func (s *Server) waitlistRanks(ctx context.Context, eventID string) (map[string]int32, error) {
	ranks := map[string]int32{}
	var n int32
	err := s.scan(ctx, kindRegistration, evStateTerm(eventID, regWaitlisted), func(rec store.Record) error {
		n++
		ranks[rec.ID] = n
		return nil
	})
	return ranks, err
}
