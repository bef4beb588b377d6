// Package registry is the register of carbon-finance institutions at the desk:
// who they are (unified social credit code, names in Chinese and English),
// what kind and tier they are, which zone of the district they sit in, their
// contact and licences, and their review state (PENDING → ACTIVE or
// REJECTED; ACTIVE ⇄ SUSPENDED) with the history of every review.
//
// The package is flat: this file holds the domain (types, rules, errors),
// uscc.go the credit-code check, enums.go the enum types, store.go the
// persistence through the platform's store.Store, events.go the subjects of
// the changes it publishes, grpc.go the RegistryService server and its proto
// converters, seeds.go the demo data loader. Publishing happens through the
// platform's outbox: every change writes its event in the same atomic batch,
// and nothing here talks to NATS.
//
// Authentication and the role check of each RPC are the gRPC server's
// interceptors' business, not this package's; the rule that an institution
// may not review itself is a domain rule and lives here.
package registry

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/protoenum"
)

// Name is the service's name: its store namespace, its stream (REGISTRY)
// and the second part of its subjects.
const Name = "registry"

// ServiceName is the gRPC service's full name, for health checks. A test
// holds it equal to registryv1.RegistryService_ServiceDesc.ServiceName.
const ServiceName = "carbondesk.registry.v1.RegistryService"

// The registry's error kinds. Each wraps the errs kind that gives its gRPC
// code, so errors.Is holds for both: errors.Is(err, ErrInvalidTransition)
// and errors.Is(err, errs.ErrFailedPrecondition). The errors returned carry
// a message for a person; these are for tests and callers in-process.
var (
	// ErrInvalidTransition: the review action does not apply to the
	// institution's current state.
	ErrInvalidTransition = fmt.Errorf("registry: invalid review transition: %w", errs.ErrFailedPrecondition)
	// ErrStaleVersion: the version the caller read is not the current one.
	ErrStaleVersion = fmt.Errorf("registry: stale version: %w", errs.ErrAborted)
	// ErrCreditCodeTaken: another institution holds the credit code.
	ErrCreditCodeTaken = fmt.Errorf("registry: credit code taken: %w", errs.ErrAlreadyExists)
	// ErrSelfReview: an institution's own user tried to review it.
	ErrSelfReview = fmt.Errorf("registry: self-review: %w", errs.ErrPermissionDenied)
)

// Limits on what a request may carry. Lengths count characters, not bytes,
// so a Chinese name gets the same room as an English one.
const (
	maxNameZh       = 100
	maxNameEn       = 200
	maxAddress      = 200
	maxContactName  = 50
	maxLicences     = 20
	maxLicenceName  = 100
	maxLicenceNo    = 64
	maxIssuer       = 100
	maxReason       = 500
	maxNameContains = 100
)

// Institution is a carbon-finance institution on the register.
type Institution struct {
	ID         string
	CreditCode string // normalised, valid
	Details
	State   State
	Version int64 // the store's version: 1 after registration, +1 per change
	Created time.Time
	Updated time.Time
	Reviews []Review // oldest first
}

// Details are the fields an institution's registration gives and an update
// may change.
type Details struct {
	NameZh   string
	NameEn   string
	Kind     Kind
	Tier     Tier
	Zone     Zone
	Address  string
	Contact  Contact
	Licences []Licence
}

// Contact is the person the desk talks to.
type Contact struct {
	Name  string
	Phone string
	Email string
}

// Licence is a financial licence or qualification.
type Licence struct {
	Name   string
	Number string
	Issuer string
}

// Review is one entry of the review history.
type Review struct {
	Action Action
	From   State
	To     State
	Reason string
	Actor  string // subject of whoever reviewed
	Time   time.Time
}

// transitions is the review state machine: each action moves from exactly
// one state to one other.
var transitions = map[Action]struct{ from, to State }{
	ActionApprove:   {StatePending, StateActive},
	ActionReject:    {StatePending, StateRejected},
	ActionSuspend:   {StateActive, StateSuspended},
	ActionReinstate: {StateSuspended, StateActive},
}

// pastTense names what an action did, for messages.
var pastTense = map[Action]string{
	ActionApprove:   "approved",
	ActionReject:    "rejected",
	ActionSuspend:   "suspended",
	ActionReinstate: "reinstated",
}

// NewInstitution makes a PENDING institution from validated details.
func NewInstitution(id, creditCode string, d Details, now time.Time) *Institution {
	now = now.UTC()
	return &Institution{
		ID:         id,
		CreditCode: creditCode,
		Details:    d,
		State:      StatePending,
		Created:    now,
		Updated:    now,
	}
}

// Review applies a review action: it checks the transition is allowed from
// the current state and that the reviewer's organisation is not the
// institution itself, then moves the state and records the review.
// actorOrg is the reviewer's organisation (its unified social credit code;
// "" for the system).
func (in *Institution) Review(a Action, reason, actor, actorOrg string, now time.Time) error {
	t, ok := transitions[a]
	if !ok {
		return fmt.Errorf("registry: unknown review action %v", a)
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	if actorOrg != "" && actorOrg == in.CreditCode {
		return errs.New(ErrSelfReview, "institution %s may not be %s by itself; a district staff member reviews it", in.ID, pastTense[a])
	}
	if in.State != t.from {
		return errs.New(ErrInvalidTransition, "institution %s is %s; only %s institutions can be %s", in.ID, in.State, t.from, pastTense[a])
	}
	now = now.UTC()
	in.Reviews = append(in.Reviews, Review{
		Action: a,
		From:   in.State,
		To:     t.to,
		Reason: strings.TrimSpace(reason),
		Actor:  actor,
		Time:   now,
	})
	in.State = t.to
	in.Updated = now
	return nil
}

// CheckVersion compares the version a caller read with the institution's.
func (in *Institution) CheckVersion(read int64) error {
	switch {
	case read == in.Version:
		return nil
	case read < in.Version:
		return errs.New(ErrStaleVersion, "version %d is stale; the institution is at version %d; read it again", read, in.Version)
	default:
		return errs.New(ErrStaleVersion, "version %d is ahead of the institution, which is at version %d; read it again", read, in.Version)
	}
}

func checkReason(reason string) error {
	reason = strings.TrimSpace(reason)
	switch n := utf8.RuneCountInString(reason); {
	case n == 0:
		return errs.Invalid("reason", "a reason is required; it is recorded in the review history")
	case n > maxReason:
		return errs.Invalid("reason", "is %d characters long; at most %d", n, maxReason)
	}
	return nil
}

// Clean trims the details' text fields, the form they are validated and
// stored in.
func (d Details) Clean() Details {
	d.NameZh = strings.TrimSpace(d.NameZh)
	d.NameEn = strings.TrimSpace(d.NameEn)
	d.Address = strings.TrimSpace(d.Address)
	d.Contact = Contact{
		Name:  strings.TrimSpace(d.Contact.Name),
		Phone: strings.TrimSpace(d.Contact.Phone),
		Email: strings.TrimSpace(d.Contact.Email),
	}
	if d.Licences != nil {
		ls := make([]Licence, len(d.Licences))
		for i, l := range d.Licences {
			ls[i] = Licence{Name: strings.TrimSpace(l.Name), Number: strings.TrimSpace(l.Number), Issuer: strings.TrimSpace(l.Issuer)}
		}
		d.Licences = ls
	}
	return d
}

// Validate records what is wrong with (cleaned) details. prefix is the path
// of the details in the request ("" for a registration, "institution." for
// an update) so each violation names the field the caller sent.
func (d Details) Validate(prefix string, v *errs.Violations) {
	switch n := utf8.RuneCountInString(d.NameZh); {
	case n == 0:
		v.Add(prefix+"name_zh", "the Chinese name is required, as registered (e.g. 楚江碳金融银行武昌分行)")
	case n > maxNameZh:
		v.Add(prefix+"name_zh", "is %d characters long; at most %d", n, maxNameZh)
	case !hasHan(d.NameZh):
		v.Add(prefix+"name_zh", "%q has no Chinese characters; give the registered Chinese name here and the English one in name_en", d.NameZh)
	case hasControl(d.NameZh):
		v.Add(prefix+"name_zh", "%q contains control characters", d.NameZh)
	}
	switch n := utf8.RuneCountInString(d.NameEn); {
	case n > maxNameEn:
		v.Add(prefix+"name_en", "is %d characters long; at most %d", n, maxNameEn)
	case hasControl(d.NameEn):
		v.Add(prefix+"name_en", "%q contains control characters", d.NameEn)
	}
	// An enum the conversion already refused is not reported again as missing.
	if d.Kind.IsZero() && !hasViolation(*v, prefix+"kind") {
		v.Add(prefix+"kind", "is required; one of %s", strings.Join(protoenum.Strings(Kinds()), ", "))
	}
	if d.Tier.IsZero() && !hasViolation(*v, prefix+"tier") {
		v.Add(prefix+"tier", "is required; one of %s", strings.Join(protoenum.Strings(Tiers()), ", "))
	}
	if d.Zone.IsZero() && !hasViolation(*v, prefix+"zone") {
		v.Add(prefix+"zone", "is required; one of %s", strings.Join(protoenum.Strings(Zones()), ", "))
	}
	switch n := utf8.RuneCountInString(d.Address); {
	case n > maxAddress:
		v.Add(prefix+"address", "is %d characters long; at most %d", n, maxAddress)
	case hasControl(d.Address):
		v.Add(prefix+"address", "%q contains control characters", d.Address)
	}
	d.Contact.validate(prefix+"contact.", v)
	if n := len(d.Licences); n > maxLicences {
		v.Add(prefix+"licences", "has %d entries; at most %d", n, maxLicences)
	}
	seen := map[Licence]bool{}
	for i, l := range d.Licences {
		if i >= maxLicences {
			break
		}
		p := fmt.Sprintf("%slicences[%d].", prefix, i)
		switch n := utf8.RuneCountInString(l.Name); {
		case n == 0:
			v.Add(p+"name", "is required (e.g. 金融许可证)")
		case n > maxLicenceName:
			v.Add(p+"name", "is %d characters long; at most %d", n, maxLicenceName)
		}
		if n := utf8.RuneCountInString(l.Number); n > maxLicenceNo {
			v.Add(p+"number", "is %d characters long; at most %d", n, maxLicenceNo)
		}
		if n := utf8.RuneCountInString(l.Issuer); n > maxIssuer {
			v.Add(p+"issuer", "is %d characters long; at most %d", n, maxIssuer)
		}
		if seen[l] {
			v.Add(p[:len(p)-1], "repeats licence %q %q", l.Name, l.Number)
		}
		seen[l] = true
	}
}

// validate checks a contact: a name, and a phone or an email to reach them.
func (c Contact) validate(prefix string, v *errs.Violations) {
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		v.Add(prefix+"name", "a contact person is required")
	case n > maxContactName:
		v.Add(prefix+"name", "is %d characters long; at most %d", n, maxContactName)
	case hasControl(c.Name):
		v.Add(prefix+"name", "%q contains control characters", c.Name)
	}
	if c.Phone == "" && c.Email == "" {
		v.Add(prefix+"phone", "a phone number or an email is required")
	}
	if c.Phone != "" {
		if msg := contact.CheckPhone(c.Phone); msg != "" {
			v.Add(prefix+"phone", "%q %s", c.Phone, msg)
		}
	}
	if c.Email != "" {
		if msg := contact.CheckEmail(c.Email); msg != "" {
			v.Add(prefix+"email", "%q %s", c.Email, msg)
		}
	}
}

func hasHan(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// Equal reports whether two sets of details are the same, so an update that
// changes nothing writes nothing.
func (d Details) Equal(o Details) bool {
	return d.NameZh == o.NameZh && d.NameEn == o.NameEn && d.Kind == o.Kind && d.Tier == o.Tier &&
		d.Zone == o.Zone && d.Address == o.Address && d.Contact == o.Contact && slices.Equal(d.Licences, o.Licences)
}

func hasViolation(v errs.Violations, field string) bool {
	return slices.ContainsFunc(v, func(fv errs.FieldViolation) bool { return fv.Field == field })
}
