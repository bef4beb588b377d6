package talent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// lanes give the changes to one event their turn within this process: a
// token per event, taken by one change at a time. Waiting changes queue on
// a channel, which Go serves in arrival order, and a caller that gives up
// (its context ends) leaves the queue. Across processes the roster's
// version check does the same job; the lanes only keep one process from
// racing itself into retries.
type lanes struct {
	mu sync.Mutex
	m  map[string]*lane
}

type lane struct {
	token chan struct{}
	users int // holders and waiters; the lane is dropped at 0
}

func newLanes() *lanes { return &lanes{m: map[string]*lane{}} }

// enter waits for the event's turn and returns the function that ends it.
func (l *lanes) enter(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	ln := l.m[key]
	if ln == nil {
		ln = &lane{token: make(chan struct{}, 1)}
		l.m[key] = ln
	}
	ln.users++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if ln.users--; ln.users == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case ln.token <- struct{}{}:
		return func() { <-ln.token; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, fmt.Errorf("talent: waiting for event %s: %w", key, ctx.Err())
	}
}

// mutateAttempts bounds how often a change is re-read and re-applied when
// another process changed the event in between. Each process serves one
// event's changes one at a time, so the processes of a busy event take
// turns: a loser waits at most maxPause before trying again, and gives up
// only after this many tries (or when its context ends).
const (
	mutateAttempts = 1000
	maxPause       = 20 * time.Millisecond
)

// tx is one change to an event and its registrations, built by a rule on
// what it read and committed as one batch: the roster (always, the fence),
// the event if it changed, every registration and talent it touched, its
// extra puts (claims, ledger entries) and the events of all of them, in the
// order they were touched.
type tx struct {
	s     *Server
	ctx   context.Context
	now   time.Time
	actor events.Actor

	ev        *talentv1.Event
	evRead    int64  // the event's store version as read (0: new)
	evSubject string // the event's subject; "" when it did not change
	ros       roster
	rosRead   int64

	regs    map[string]*regRef
	talents map[string]*talentRef
	order   []ref
	puts    []store.Put

	// The waitlist as read, front first, for promotions.
	waitBuf   []store.Record
	waitAfter string
	waitDone  bool
}

type ref struct{ kind, id string }

type regRef struct {
	r       *talentv1.Registration
	read    int64
	subject string
}

type talentRef struct {
	t       *talentv1.Talent
	read    int64
	subject string
}

// begin reads an event for a change: its roster first, then the event, so
// that a change committed in between fails this one's roster check.
func (s *Server) begin(ctx context.Context, eventID string) (*tx, error) {
	ros, rosRead, err := s.getRoster(ctx, eventID)
	if err != nil {
		return nil, err
	}
	ev, err := s.getEvent(ctx, eventID)
	if err != nil {
		return nil, err
	}
	t := s.newTx(ctx, ev)
	t.evRead, t.ros, t.rosRead = ev.GetVersion(), ros, rosRead
	return t, nil
}

func (s *Server) newTx(ctx context.Context, ev *talentv1.Event) *tx {
	return &tx{s: s, ctx: ctx, now: s.now().UTC(), actor: events.ActorFrom(ctx), ev: ev,
		regs: map[string]*regRef{}, talents: map[string]*talentRef{}}
}

// mutate is update-by-closure for an event: in the event's lane, it reads
// the event, lets fn apply a rule, and commits what fn changed. A conflict
// with another process re-reads and runs fn again, after a growing,
// jittered pause; a rule that changes nothing writes nothing. A person's
// key already claimed answers ErrAlreadyRegistered.
func (s *Server) mutate(ctx context.Context, eventID string, fn func(t *tx) error) (*tx, error) {
	leave, err := s.lanes.enter(ctx, eventID)
	if err != nil {
		return nil, err
	}
	defer leave()
	pause := time.Millisecond
	for attempt := 1; ; attempt++ {
		t, err := s.begin(ctx, eventID)
		if err != nil {
			return nil, err
		}
		if err := fn(t); err != nil {
			return nil, err
		}
		if !t.changed() {
			return t, nil
		}
		err = t.commit()
		var ce *store.ConflictError
		switch {
		case err == nil:
			return t, nil
		case errors.As(err, &ce) && ce.Kind == kindClaim:
			return nil, t.claimTaken(ce.ID)
		case errors.As(err, &ce) && attempt < mutateAttempts:
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("talent: event %s: %w", eventID, ctx.Err())
			case <-time.After(pause + rand.N(pause)):
			}
			pause = min(2*pause, maxPause)
		case errors.As(err, &ce):
			return nil, errs.New(ErrStaleVersion, "event %s kept changing while this change was made; read it again and retry", eventID)
		default:
			return nil, err
		}
	}
}

// changed reports whether the rule changed anything.
func (t *tx) changed() bool { return len(t.order) > 0 || len(t.puts) > 0 }

// touchEvent records that the event changed, with its event's subject (a
// later subject of the same change wins).
func (t *tx) touchEvent(subject string) {
	if t.evSubject == "" {
		t.order = append(t.order, ref{kindEvent, t.ev.GetId()})
	}
	t.evSubject = subject
	t.ev.UpdateTime = timestamppb.New(t.now)
}

// registration reads one of the event's registrations into the change.
func (t *tx) registration(id string) (*talentv1.Registration, error) {
	if rr, ok := t.regs[id]; ok {
		return rr.r, nil
	}
	r, err := t.s.getRegistration(t.ctx, id)
	if err != nil {
		return nil, err
	}
	if r.GetEventId() != t.ev.GetId() {
		return nil, fmt.Errorf("talent: registration %s is stored under event %s, not %s", id, r.GetEventId(), t.ev.GetId())
	}
	t.regs[id] = &regRef{r: r, read: r.GetVersion()}
	return r, nil
}

// touchRegistration records that a registration changed (or is new, read
// version 0), with its event's subject.
func (t *tx) touchRegistration(r *talentv1.Registration, subject string) {
	rr, ok := t.regs[r.GetId()]
	if !ok {
		rr = &regRef{r: r}
		t.regs[r.GetId()] = rr
	}
	if rr.subject == "" {
		t.order = append(t.order, ref{kindRegistration, r.GetId()})
	}
	rr.subject = subject
	r.UpdateTime = timestamppb.New(t.now)
}

// talent reads a talent profile into the change.
func (t *tx) talent(id string) (*talentv1.Talent, error) {
	if tr, ok := t.talents[id]; ok {
		return tr.t, nil
	}
	p, err := t.s.getTalent(t.ctx, id)
	if err != nil {
		return nil, err
	}
	t.talents[id] = &talentRef{t: p, read: p.GetVersion()}
	return p, nil
}

func (t *tx) touchTalent(p *talentv1.Talent, subject string) {
	tr := t.talents[p.GetId()]
	if tr.subject == "" {
		t.order = append(t.order, ref{kindTalent, p.GetId()})
	}
	tr.subject = subject
	p.UpdateTime = timestamppb.New(t.now)
}

// nextWaitlisted returns the first WAITLISTED registration in order of
// arrival that this change has not moved on, or nil when none is left.
func (t *tx) nextWaitlisted() (*talentv1.Registration, error) {
	for {
		if len(t.waitBuf) == 0 {
			if t.waitDone {
				return nil, nil
			}
			q := store.Query{Index: evStateTerm(t.ev.GetId(), regWaitlisted), After: t.waitAfter, Limit: 32}
			page, err := t.s.st.List(t.ctx, kindRegistration, q)
			if err != nil {
				return nil, fmt.Errorf("talent: waitlist of %s: %w", t.ev.GetId(), err)
			}
			t.waitBuf = page.Records
			t.waitDone = page.Next == "" || (len(page.Records) == 0 && page.Next == q.After)
			t.waitAfter = page.Next
			continue
		}
		rec := t.waitBuf[0]
		t.waitBuf = t.waitBuf[1:]
		if rr, ok := t.regs[rec.ID]; ok {
			if rr.r.GetState() == regWaitlisted && rr.subject == "" {
				return rr.r, nil
			}
			continue
		}
		r, err := decodeRegistration(rec)
		if err != nil {
			return nil, err
		}
		t.regs[rec.ID] = &regRef{r: r, read: rec.Version}
		if r.GetState() == regWaitlisted {
			return r, nil
		}
		// The index moved after the roster was read: the commit will fail
		// its roster check and the change run again.
	}
}

// claim adds the put that holds a person's key for the registration.
func (t *tx) claim(key, registrationID string) {
	t.puts = append(t.puts, store.Put{Kind: kindClaim, ID: claimID(t.ev.GetId(), key), Expect: store.MustNotExist, Data: []byte(registrationID)})
}

// release adds the deletes of a registration's keys. The roster fences
// them: a key is claimed and released only by changes to its event.
func (t *tx) release(r *talentv1.Registration) {
	for _, k := range personKeys(r.GetAttendee()) {
		t.puts = append(t.puts, store.Put{Kind: kindClaim, ID: claimID(t.ev.GetId(), k), Expect: store.AnyVersion, Delete: true})
	}
}

// claimTaken is the answer when a person's key was already claimed.
func (t *tx) claimTaken(id string) error {
	_, k, _ := strings.Cut(id, "|")
	what := "this person"
	switch kind, val, _ := strings.Cut(k, ":"); kind {
	case "t":
		what = "talent " + val
	case "p":
		what = "phone " + contact.MaskPhone(val)
	case "e":
		what = "e-mail " + contact.MaskEmail(val)
	}
	return errs.New(ErrAlreadyRegistered, "%s is already registered for event %s; one registration per person", what, t.ev.GetId())
}

// commit writes the change in one batch.
func (t *tx) commit() (err error) {
	var b store.Batch
	ros, err := json.Marshal(t.ros)
	if err != nil {
		return fmt.Errorf("talent: marshal roster: %w", err)
	}
	var rterms []string
	if t.ev.GetState() == eventCancelled && t.ros.live() > 0 {
		rterms = []string{termDrain}
	}
	b.Puts = append(b.Puts, store.Put{Kind: kindRoster, ID: t.ev.GetId(), Expect: t.rosRead, Data: ros, Index: rterms})

	// Versions move only if the batch commits; put them back otherwise.
	defer func() {
		if err != nil {
			t.ev.Version = t.evRead
			for _, rr := range t.regs {
				rr.r.Version = rr.read
			}
			for _, tr := range t.talents {
				tr.t.Version = tr.read
			}
		}
	}()
	for _, r := range t.order {
		var (
			msg     proto.Message
			subject string
			version int64
		)
		switch r.kind {
		case kindEvent:
			t.ev.Version = t.evRead + 1
			t.ev.Seats = nil // the roster holds them
			data, merr := proto.Marshal(t.ev)
			if merr != nil {
				return fmt.Errorf("talent: marshal event: %w", merr)
			}
			b.Puts = append(b.Puts, store.Put{Kind: kindEvent, ID: t.ev.GetId(), Expect: t.evRead, Data: data, Index: eventTerms(t.ev)})
			t.ev.Seats = t.ros.seats()
			msg, subject, version = t.ev, t.evSubject, t.ev.GetVersion()
		case kindRegistration:
			rr := t.regs[r.id]
			rr.r.Version = rr.read + 1
			wait := rr.r.WaitlistPosition
			rr.r.WaitlistPosition = 0 // computed when read
			data, merr := proto.Marshal(rr.r)
			rr.r.WaitlistPosition = wait
			if merr != nil {
				return fmt.Errorf("talent: marshal registration: %w", merr)
			}
			b.Puts = append(b.Puts, store.Put{Kind: kindRegistration, ID: r.id, Expect: rr.read, Data: data, Index: registrationTerms(rr.r)})
			msg, subject, version = rr.r, rr.subject, rr.r.GetVersion()
		case kindTalent:
			tr := t.talents[r.id]
			tr.t.Version = tr.read + 1
			data, merr := proto.Marshal(tr.t)
			if merr != nil {
				return fmt.Errorf("talent: marshal talent: %w", merr)
			}
			b.Puts = append(b.Puts, store.Put{Kind: kindTalent, ID: r.id, Expect: tr.read, Data: data, Index: talentTerms(tr.t)})
			msg, subject, version = tr.t, tr.subject, tr.t.GetVersion()
		}
		ev, eerr := event(t.actor, subject, r.id, version, msg, t.now)
		if eerr != nil {
			return eerr
		}
		b.Events = append(b.Events, ev)
	}
	b.Puts = append(b.Puts, t.puts...)
	if _, err = t.s.st.Apply(t.ctx, b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("talent: write event %s: %w", t.ev.GetId(), err)
	}
	return nil
}
