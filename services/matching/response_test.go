package matching

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// answeredMatch is a match of inst proposed at t0 with a 72 h deadline,
// answered (or lapsed) after d.
func answeredMatch(inst string, d time.Duration, overdue bool) *matchingv1.Match {
	return &matchingv1.Match{
		Id: events.NewID(t0), InstitutionId: inst,
		CreateTime: timestamppb.New(t0), ResponseDeadline: timestamppb.New(t0.Add(72 * time.Hour)),
		UpdateTime: timestamppb.New(t0.Add(d)), ResponseOverdue: overdue,
	}
}

func TestResponseRecord(t *testing.T) {
	t.Parallel()
	const deadline = 72 * time.Hour
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

	t.Run("no record is neutral", func(t *testing.T) {
		b := newResponseBook(180 * 24 * time.Hour)
		r := b.record("BANK", deadline)
		if r.score != 0.5 || !strings.Contains(r.detail, "neutral") {
			t.Errorf("record = %+v, want 0.5, neutral", r)
		}
	})
	t.Run("answers and lapses", func(t *testing.T) {
		b := newResponseBook(180 * 24 * time.Hour)
		// 3 answered after 18 h (a quarter of the window), 1 lapsed; 1
		// expired because the demand ended (not counted); 1 withdrawn
		// (not an answer).
		for range 3 {
			if _, ok := b.note(SubjectMatchAccepted, answeredMatch("BANK", 18*time.Hour, false)); !ok {
				t.Fatal("accepted not counted")
			}
		}
		b.note(SubjectMatchExpired, answeredMatch("BANK", 80*time.Hour, true))
		if _, ok := b.note(SubjectMatchExpired, answeredMatch("BANK", 10*time.Hour, false)); ok {
			t.Error("an expiry because the demand ended counted as the institution's lapse")
		}
		if _, ok := b.note(SubjectMatchWithdrawn, answeredMatch("BANK", time.Hour, false)); ok {
			t.Error("a withdrawal counted")
		}
		r := b.record("BANK", deadline)
		rate := float64(3+1) / float64(4+2)
		want := responseRateWeight*rate + responseSpeedWeight*(1-0.25)
		if !near(r.score, want) {
			t.Errorf("score %v, want %v", r.score, want)
		}
		if !strings.Contains(r.detail, "answered 3 of 4") || !strings.Contains(r.detail, "18h0m0s of the 72h0m0s") {
			t.Errorf("detail %q does not give the counts and the time", r.detail)
		}
	})
	t.Run("an event counts once", func(t *testing.T) {
		b := newResponseBook(180 * 24 * time.Hour)
		m := answeredMatch("BANK", time.Hour, false)
		b.note(SubjectMatchDeclined, m)
		if _, ok := b.note(SubjectMatchDeclined, m); ok {
			t.Error("a replayed event counted twice")
		}
		if r := b.record("BANK", deadline); !strings.Contains(r.detail, "answered 1 of 1") {
			t.Errorf("detail %q", r.detail)
		}
	})
	t.Run("old answers leave the window", func(t *testing.T) {
		b := newResponseBook(30 * 24 * time.Hour)
		b.note(SubjectMatchExpired, answeredMatch("BANK", 73*time.Hour, true))
		late := answeredMatch("BANK", 0, false)
		late.CreateTime = timestamppb.New(t0.Add(60 * 24 * time.Hour))
		late.ResponseDeadline = timestamppb.New(t0.Add(63 * 24 * time.Hour))
		late.UpdateTime = late.CreateTime
		b.note(SubjectMatchAccepted, late)
		r := b.record("BANK", deadline)
		if !strings.Contains(r.detail, "answered 1 of 1") {
			t.Errorf("detail %q: the lapse 60 days ago should have left a 30-day window", r.detail)
		}
		want := responseRateWeight*(2.0/3) + responseSpeedWeight*1
		if !near(r.score, want) {
			t.Errorf("score %v, want %v", r.score, want)
		}
	})
	t.Run("bounds", func(t *testing.T) {
		b := newResponseBook(180 * 24 * time.Hour)
		for range 50 {
			b.note(SubjectMatchAccepted, answeredMatch("FAST", 0, false))
			b.note(SubjectMatchExpired, answeredMatch("SLOW", 73*time.Hour, true))
		}
		fast, slow := b.record("FAST", deadline).score, b.record("SLOW", deadline).score
		if fast <= 0.95 || fast > 1 || slow >= 0.15 || slow < 0 {
			t.Errorf("fast %v, slow %v: want near 1 and near 0", fast, slow)
		}
	})
}

// TestResponseRecordRanks: the record read from matching's own events moves
// an institution's products in the ranking, and the match's reasons say
// why. Two institutions with the same product; the one that let its
// proposals lapse falls behind the one that answers.
func TestResponseRecordRanks(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st store.Store) {
		f := newFixture(t, st, WithPolicy(Policy{TopK: 1}))
		answers := f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		lapses := f.institution(t, registryv1.Zone_ZONE_FINANCE_AXIS)
		// lapses' product is a little cheaper: with equal records it wins.
		pa, pl := pledge(answers, 400), pledge(lapses, 390)
		f.s.applyProduct(pa, pa.Version)
		f.s.applyProduct(pl, pl.Version)
		_, ms, _ := f.post(t)
		if ms[0].GetProductId() != pl.GetId() {
			t.Fatalf("with equal records, %s ranked first; want the cheaper %s", ms[0].GetProductId(), pl.GetId())
		}

		// What the MATCHING stream would carry: answers answers, lapses lapses.
		for range 4 {
			f.s.applyEvent(SubjectMatchAccepted, envelope(t, SubjectMatchAccepted, "m", 2, answeredMatch(answers.GetId(), 2*time.Hour, false)))
			f.s.applyEvent(SubjectMatchExpired, envelope(t, SubjectMatchExpired, "m", 2, answeredMatch(lapses.GetId(), 73*time.Hour, true)))
		}
		// A later registry event for the institution keeps its record.
		lapses.Version++
		f.s.applyInstitution(lapses, lapses.Version)

		_, ms, _ = f.post(t)
		if ms[0].GetProductId() != pa.GetId() {
			t.Fatalf("after 4 lapses, %s ranked first; want the answering institution's %s", ms[0].GetProductId(), pa.GetId())
		}
		var part *matchingv1.ScorePart
		for _, p := range ms[0].GetScoreParts() {
			if p.GetName() == "response" {
				part = p
			}
		}
		if part == nil || part.GetValue() <= 0.5 || !strings.Contains(part.GetDetail(), "answered 4 of 4") {
			t.Errorf("response part %v: want above 0.5, worded with the counts", part)
		}
	})
}
