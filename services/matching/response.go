package matching

import (
	"fmt"
	"time"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
)

// An institution's response record is the "response" part of the score
// (DESIGN §6): how reliably and how fast it answers what the desk proposes
// to it. It is read from matching's own events, not kept in the store: the
// MATCHING stream's match.accepted, match.declined and match.expired events
// of the last Policy.ResponseWindow are replayed at start (with the catalog
// and registry streams, before PostDemand serves) and followed after, so
// every replica of matching computes the same record.
//
// For one institution, over the window:
//
//	answered = proposals accepted or declined before the response deadline
//	missed   = proposals that expired with the response deadline passed
//	           (a proposal closed because the demand itself ended is neither)
//	rate     = (answered + 1) / (answered + missed + 2)   (0.5 with no record)
//	speed    = 1 − mean share of the response window used to answer
//	           (0.5 with no answer yet)
//	record   = 0.8 × rate + 0.2 × speed
//
// so an institution new to the desk stands at 0.5, one that answers every
// proposal at once approaches 1, and one that lets them lapse approaches 0.
const (
	responseRateWeight  = 0.8
	responseSpeedWeight = 0.2
)

// responseBook holds the answers of the window per institution. Its
// methods run under the directory's lock (s.dir.mu), so the engine's view
// of an institution and its record never cross.
type responseBook struct {
	window time.Duration
	seen   map[string]struct{} // match ids counted, so a replay counts nothing twice
	byInst map[string][]answer // oldest first
}

type answer struct {
	match    string
	at       time.Time
	answered bool
	used     float64 // share of the response window used, answered ones
}

// responseRecord is an institution's record and its wording.
type responseRecord struct {
	score  float64
	detail string
}

func newResponseBook(window time.Duration) *responseBook {
	return &responseBook{window: window, seen: map[string]struct{}{}, byInst: map[string][]answer{}}
}

// note counts a match's answer (accepted, declined) or lapse (expired) and
// reports whose record changed; false when the event says nothing about
// responsiveness or was counted already.
func (b *responseBook) note(subject string, m *matchingv1.Match) (inst string, changed bool) {
	var a answer
	switch subject {
	case SubjectMatchAccepted, SubjectMatchDeclined:
		a.answered = true
		a.at = m.GetUpdateTime().AsTime()
		if subject == SubjectMatchAccepted && m.GetAcceptTime() != nil {
			a.at = m.GetAcceptTime().AsTime()
		}
		created, deadline := m.GetCreateTime().AsTime(), m.GetResponseDeadline().AsTime()
		if span := deadline.Sub(created); span > 0 {
			a.used = min(max(float64(a.at.Sub(created))/float64(span), 0), 1)
		}
	case SubjectMatchExpired:
		if !m.GetResponseOverdue() {
			return "", false // the demand ended first: not the institution's lapse
		}
		a.at = m.GetUpdateTime().AsTime()
	default:
		return "", false
	}
	inst, a.match = m.GetInstitutionId(), m.GetId()
	if inst == "" || a.match == "" {
		return "", false
	}
	if _, ok := b.seen[a.match]; ok {
		return "", false
	}
	b.seen[a.match] = struct{}{}
	list := append(b.byInst[inst], a)
	// Keep time order (replays and followers deliver in stream order, which
	// is nearly time order) and drop what fell out of the window.
	for i := len(list) - 1; i > 0 && list[i].at.Before(list[i-1].at); i-- {
		list[i], list[i-1] = list[i-1], list[i]
	}
	cut := list[len(list)-1].at.Add(-b.window)
	n := 0
	for n < len(list) && list[n].at.Before(cut) {
		delete(b.seen, list[n].match)
		n++
	}
	b.byInst[inst] = list[n:]
	return inst, true
}

// record is an institution's response record now.
func (b *responseBook) record(inst string, responseDeadline time.Duration) responseRecord {
	list := b.byInst[inst]
	var answered, missed int
	var used float64
	for _, a := range list {
		if a.answered {
			answered++
			used += a.used
		} else {
			missed++
		}
	}
	days := int(b.window / (24 * time.Hour))
	if answered+missed == 0 {
		return responseRecord{score: defaultResponseScore,
			detail: fmt.Sprintf("no proposal answered or lapsed in the last %d days: neutral %.1f", days, defaultResponseScore)}
	}
	rate := float64(answered+1) / float64(answered+missed+2)
	speed := 0.5
	detail := fmt.Sprintf("answered %d of %d proposals before the deadline in the last %d days", answered, answered+missed, days)
	if answered > 0 {
		meanUsed := used / float64(answered)
		speed = 1 - meanUsed
		detail += fmt.Sprintf(", on average after %s of the %s allowed",
			(time.Duration(meanUsed * float64(responseDeadline))).Round(time.Minute), responseDeadline)
	}
	return responseRecord{score: responseRateWeight*rate + responseSpeedWeight*speed, detail: detail}
}
