package talent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/services/registry"
)

// Requests are validated here, in the domain, and every problem is a field
// violation naming the field path the caller sent and showing the value.
// The clean* functions copy what a caller may set and trim it: the form
// values are validated and stored in.

// checkText records what is wrong with a text field.
func checkText(v *errs.Violations, field, s string, max int, required bool) {
	switch n := utf8.RuneCountInString(s); {
	case n == 0 && required:
		v.Add(field, "is required")
	case n > max:
		v.Add(field, "is %d characters long; at most %d", n, max)
	case !utf8.ValidString(s):
		v.Add(field, "is not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }):
		v.Add(field, "contains control characters")
	}
}

func hasHan(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
}

// foldText is the form names are searched in: width-folded, lower-cased.
func foldText(s string) string { return strings.ToLower(width.Fold.String(strings.TrimSpace(s))) }

// skillKey is the form skills are compared and indexed in: folded, every
// space dropped ("ISO 14064" and "iso14064" are one skill).
func skillKey(s string) string {
	return strings.Join(strings.Fields(foldText(s)), "")
}

// checkTime records what is wrong with a timestamp: unset when required,
// not a valid time, or outside 2000–2100.
func checkTime(v *errs.Violations, field string, ts *timestamppb.Timestamp, required bool) bool {
	switch {
	case ts == nil:
		if required {
			v.Add(field, "is required")
		}
		return false
	case ts.CheckValid() != nil:
		v.Add(field, "is not a valid time: %v", ts.CheckValid())
		return false
	case ts.AsTime().Year() < 2000 || ts.AsTime().Year() > 2100:
		v.Add(field, "%s is not between 2000 and 2100", rfc3339(ts))
		return false
	}
	return true
}

// checkEnums records unknown, unset and repeated values of a repeated enum.
func checkEnums[P protoenum.Enum](v *errs.Violations, field string, vals []P, max int) {
	if len(vals) > max {
		v.Add(field, "has %d entries; at most %d", len(vals), max)
		return
	}
	seen := map[P]bool{}
	for i, x := range vals {
		switch {
		case x == 0 || protoenum.Known(x) != x:
			v.Add(fmt.Sprintf("%s[%d]", field, i), "unknown value %d; one of %s", x, strings.Join(protoenum.Keys[P](), ", "))
		case seen[x]:
			v.Add(fmt.Sprintf("%s[%d]", field, i), "%s is listed twice", key(x))
		}
		seen[x] = true
	}
}

// cleanEvent copies the fields a caller sets on an event, trimmed.
func cleanEvent(in *talentv1.Event) *talentv1.Event {
	e := &talentv1.Event{
		TitleZh:              strings.TrimSpace(in.GetTitleZh()),
		TitleEn:              strings.TrimSpace(in.GetTitleEn()),
		Kind:                 in.GetKind(),
		Description:          strings.TrimSpace(in.GetDescription()),
		StartTime:            in.GetStartTime(),
		EndTime:              in.GetEndTime(),
		Venue:                strings.TrimSpace(in.GetVenue()),
		Zone:                 in.GetZone(),
		Capacity:             in.GetCapacity(),
		RegistrationDeadline: in.GetRegistrationDeadline(),
		TrainingHours:        in.GetTrainingHours(),
	}
	if tp := in.GetTopics(); tp != nil {
		e.Topics = &talentv1.Topics{
			Categories: slices.Clone(tp.GetCategories()),
			Sectors:    slices.Clone(tp.GetSectors()),
			JobTypes:   slices.Clone(tp.GetJobTypes()),
		}
	}
	return e
}

// validateEvent records what is wrong with an event's (cleaned) fields,
// each under prefix ("event.").
func validateEvent(prefix string, e *talentv1.Event, v *errs.Violations) {
	checkText(v, prefix+"title_zh", e.GetTitleZh(), maxTitleZh, true)
	if t := e.GetTitleZh(); t != "" && !hasHan(t) {
		v.Add(prefix+"title_zh", "%q has no Chinese characters; give the Chinese title here and the English one in title_en", errs.Shorten(t, 40))
	}
	checkText(v, prefix+"title_en", e.GetTitleEn(), maxTitleEn, false)
	if k := e.GetKind(); k == 0 || protoenum.Known(k) != k {
		v.Add(prefix+"kind", "%d: give what sort of event it is, one of %s", k, strings.Join(protoenum.Keys[talentv1.EventKind](), ", "))
	}
	checkText(v, prefix+"description", e.GetDescription(), maxDescription, false)
	startOK := checkTime(v, prefix+"start_time", e.GetStartTime(), true)
	endOK := checkTime(v, prefix+"end_time", e.GetEndTime(), true)
	if startOK && endOK {
		start, end := e.GetStartTime().AsTime(), e.GetEndTime().AsTime()
		switch {
		case !end.After(start):
			v.Add(prefix+"end_time", "%s is not after start_time %s", rfc3339(e.GetEndTime()), rfc3339(e.GetStartTime()))
		case end.Sub(start) > maxDuration:
			v.Add(prefix+"end_time", "the event would last %s; at most 31 days", end.Sub(start).Round(time.Hour))
		}
	}
	if checkTime(v, prefix+"registration_deadline", e.GetRegistrationDeadline(), false) && startOK &&
		e.GetRegistrationDeadline().AsTime().After(e.GetStartTime().AsTime()) {
		v.Add(prefix+"registration_deadline", "%s is after start_time %s; registration closes at the start at the latest",
			rfc3339(e.GetRegistrationDeadline()), rfc3339(e.GetStartTime()))
	}
	checkText(v, prefix+"venue", e.GetVenue(), maxVenue, true)
	if z := e.GetZone(); protoenum.Known(z) != z {
		v.Add(prefix+"zone", "unknown value %d; one of %s, or leave it unset", z, strings.Join(protoenum.Keys[registryv1.Zone](), ", "))
	}
	if c := e.GetCapacity(); c < 1 || c > maxCapacity {
		v.Add(prefix+"capacity", "%d: an event seats 1 to %d people", c, maxCapacity)
	}
	checkEnums(v, prefix+"topics.categories", e.GetTopics().GetCategories(), len(catalogv1.ProductCategory_name)-1)
	checkEnums(v, prefix+"topics.sectors", e.GetTopics().GetSectors(), len(catalogv1.Sector_name)-1)
	checkEnums(v, prefix+"topics.job_types", e.GetTopics().GetJobTypes(), len(talentv1.JobType_name)-1)
	if h := e.GetTrainingHours(); h < 0 || h > maxHours {
		v.Add(prefix+"training_hours", "%d: whole training hours, 0 to %d", h, maxHours)
	}
}

// checkAhead records an event time that is not in the future, or too far
// in it.
func checkAhead(v *errs.Violations, field string, ts *timestamppb.Timestamp, now time.Time) {
	switch t := ts.AsTime(); {
	case !t.After(now):
		v.Add(field, "%s is not in the future", rfc3339(ts))
	case t.Sub(now) > maxAhead:
		v.Add(field, "%s is more than two years away", rfc3339(ts))
	}
}

// cleanAttendee copies an attendee, trimmed.
func cleanAttendee(a *talentv1.Attendee) *talentv1.Attendee {
	return &talentv1.Attendee{
		Name:         strings.TrimSpace(a.GetName()),
		Organization: strings.TrimSpace(a.GetOrganization()),
		Role:         strings.TrimSpace(a.GetRole()),
		Phone:        strings.TrimSpace(a.GetPhone()),
		Email:        strings.TrimSpace(a.GetEmail()),
		TalentId:     strings.TrimSpace(a.GetTalentId()),
	}
}

// validatePerson records what is wrong with a person's name, organisation,
// role and contact, under prefix.
func validatePerson(v *errs.Violations, prefix, name, org, role, phone, email string) {
	checkText(v, prefix+"name", name, maxPersonName, true)
	checkText(v, prefix+"organization", org, maxOrganization, true)
	checkText(v, prefix+"role", role, maxRole, false)
	if phone == "" && email == "" {
		v.Add(prefix+"phone", "a phone number or an e-mail is required")
	}
	if phone != "" {
		if msg := contact.CheckPhone(phone); msg != "" {
			v.Add(prefix+"phone", "%q %s", errs.Shorten(phone, 40), msg)
		}
	}
	if email != "" {
		if msg := contact.CheckEmail(email); msg != "" {
			v.Add(prefix+"email", "%q %s", errs.Shorten(email, 60), msg)
		}
	}
}

func validateAttendee(v *errs.Violations, a *talentv1.Attendee) {
	validatePerson(v, "attendee.", a.GetName(), a.GetOrganization(), a.GetRole(), a.GetPhone(), a.GetEmail())
}

// checkID records an id that is longer than any this service issues.
func checkID(v *errs.Violations, field, id string, required bool) {
	switch {
	case id == "" && required:
		v.Add(field, "is required")
	case len(id) > maxID:
		v.Add(field, "is %d bytes long; an id is at most %d", len(id), maxID)
	}
}

// cleanTalent copies the fields a caller sets on a talent, trimmed, with
// skills and certifications in the order given.
func cleanTalent(in *talentv1.Talent) *talentv1.Talent {
	t := &talentv1.Talent{
		Name:                   strings.TrimSpace(in.GetName()),
		Organization:           strings.TrimSpace(in.GetOrganization()),
		OrganizationCreditCode: registry.NormalizeCreditCode(in.GetOrganizationCreditCode()),
		Role:                   strings.TrimSpace(in.GetRole()),
		Phone:                  strings.TrimSpace(in.GetPhone()),
		Email:                  strings.TrimSpace(in.GetEmail()),
	}
	for _, s := range in.GetSkills() {
		t.Skills = append(t.Skills, strings.Join(strings.Fields(s), " "))
	}
	for _, c := range in.GetCertifications() {
		t.Certifications = append(t.Certifications, &talentv1.Certification{
			JobType:           c.GetJobType(),
			CertificateNumber: strings.TrimSpace(c.GetCertificateNumber()),
			IssueTime:         c.GetIssueTime(),
		})
	}
	return t
}

// validateTalent records what is wrong with a (cleaned) talent.
func validateTalent(v *errs.Violations, prefix string, t *talentv1.Talent, now time.Time) {
	validatePerson(v, prefix, t.GetName(), t.GetOrganization(), t.GetRole(), t.GetPhone(), t.GetEmail())
	if code := t.GetOrganizationCreditCode(); code != "" {
		var cce *registry.CreditCodeError
		if _, err := registry.ValidateCreditCode(code); errors.As(err, &cce) {
			v.Add(prefix+"organization_credit_code", "%q: %s", errs.Shorten(code, 40), cce.Problem)
		}
	}
	if n := len(t.GetSkills()); n > maxSkills {
		v.Add(prefix+"skills", "has %d entries; at most %d", n, maxSkills)
	} else {
		seen := map[string]bool{}
		for i, s := range t.GetSkills() {
			field := fmt.Sprintf("%sskills[%d]", prefix, i)
			checkText(v, field, s, maxSkill, true)
			if k := skillKey(s); k != "" && seen[k] {
				v.Add(field, "%q is listed twice", errs.Shorten(s, 40))
			} else {
				seen[k] = true
			}
		}
	}
	if n := len(t.GetCertifications()); n > len(talentv1.JobType_name)-1 {
		v.Add(prefix+"certifications", "has %d entries; at most one per job type", n)
		return
	}
	seen := map[talentv1.JobType]bool{}
	for i, c := range t.GetCertifications() {
		field := fmt.Sprintf("%scertifications[%d]", prefix, i)
		switch j := c.GetJobType(); {
		case j == 0 || protoenum.Known(j) != j:
			v.Add(field+".job_type", "unknown value %d; one of %s", j, strings.Join(protoenum.Keys[talentv1.JobType](), ", "))
		case seen[j]:
			v.Add(field+".job_type", "%s is certified twice; one certification per job type", key(j))
		}
		seen[c.GetJobType()] = true
		checkText(v, field+".certificate_number", c.GetCertificateNumber(), maxCertNumber, false)
		if checkTime(v, field+".issue_time", c.GetIssueTime(), false) && c.GetIssueTime().AsTime().After(now) {
			v.Add(field+".issue_time", "%s is in the future", rfc3339(c.GetIssueTime()))
		}
	}
}

// sameTalentFields reports whether two talents' caller-set fields are equal.
func sameTalentFields(a, b *talentv1.Talent) bool {
	return proto.Equal(cleanTalent(a), cleanTalent(b))
}
