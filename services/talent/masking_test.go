package talent

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	talentv1 "github.com/carbondesk/carbondesk/gen/carbondesk/talent/v1"
	"github.com/carbondesk/carbondesk/internal/contact"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// TestContactMasking: a caller who is neither the event's host nor staff
// never sees an attendee's full phone number or e-mail, in any answer that
// carries a registration (the organisation that filed it included); the
// host and staff see them in full; anyone else does not see the
// registration at all.
func TestContactMasking(t *testing.T) {
	e := newEnv(t, testenv.BoltStore(t))
	host := e.host(t, active)
	ev := e.published(t, host, capacity(1))
	ent, stranger := newOrg(), newOrg()
	entCtx, hostCtx := entCtx(ent), instCtx(host.CreditCode)
	people := []*talentv1.Attendee{person(), person(), person()}
	full := map[string]*talentv1.Attendee{} // registration id -> as registered

	// check holds one answered registration to the caller's rule.
	check := func(what string, masked bool, r *talentv1.Registration) {
		t.Helper()
		a, orig := r.GetAttendee(), full[r.GetId()]
		if orig == nil {
			t.Fatalf("%s: unknown registration %s", what, r.GetId())
		}
		if !masked {
			if a.GetPhone() != orig.GetPhone() || a.GetEmail() != orig.GetEmail() || r.GetContactMasked() {
				t.Errorf("%s: the host or staff see %q %q (masked %v); want %q %q in full", what, a.GetPhone(), a.GetEmail(), r.GetContactMasked(), orig.GetPhone(), orig.GetEmail())
			}
			return
		}
		digits := contact.PhoneKey(orig.GetPhone())
		local, _, _ := strings.Cut(orig.GetEmail(), "@")
		switch {
		case !r.GetContactMasked():
			t.Errorf("%s: contact_masked is false", what)
		case strings.Contains(contact.PhoneKey(a.GetPhone()), digits) || strings.Count(a.GetPhone(), "*") < 4:
			t.Errorf("%s: phone %q shows %q", what, a.GetPhone(), orig.GetPhone())
		case strings.Contains(a.GetEmail(), local) || a.GetEmail() == orig.GetEmail():
			t.Errorf("%s: e-mail %q shows %q", what, a.GetEmail(), orig.GetEmail())
		}
	}

	var regs []*talentv1.Registration
	for _, a := range people {
		resp, err := e.s.RegisterForEvent(entCtx, &talentv1.RegisterForEventRequest{EventId: ev.GetId(), Attendee: a})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.GetRegistration()
		full[r.GetId()] = a
		check("RegisterForEvent answer to the registrant", true, r)
		regs = append(regs, r)
	}

	callers := []struct {
		name   string
		ctx    context.Context
		masked bool
	}{
		{"the registrant", entCtx, true},
		{"the host", hostCtx, false},
		{"staff", staffCtx(t), false},
	}
	for _, c := range callers {
		for _, r := range regs {
			resp, err := e.s.GetRegistration(c.ctx, &talentv1.GetRegistrationRequest{Id: r.GetId()})
			if err != nil {
				t.Fatalf("%s reads %s: %v", c.name, r.GetId(), err)
			}
			check("GetRegistration by "+c.name, c.masked, resp.GetRegistration())
		}
		for _, req := range []*talentv1.ListRegistrationsRequest{{EventId: ev.GetId()}, {}} {
			resp, err := e.s.ListRegistrations(c.ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if c.name != "the host" && len(resp.GetRegistrations()) != len(regs) {
				t.Errorf("%s lists %d registrations with %v; want %d", c.name, len(resp.GetRegistrations()), req, len(regs))
			}
			for _, r := range resp.GetRegistrations() {
				check("ListRegistrations by "+c.name, c.masked, r)
			}
		}
	}

	// A cancellation answers the cancelled and the promoted registration,
	// both masked for the registrant.
	resp, err := e.s.CancelRegistration(entCtx, &talentv1.CancelRegistrationRequest{Id: regs[0].GetId()})
	if err != nil {
		t.Fatal(err)
	}
	check("CancelRegistration answer", true, resp.GetRegistration())
	check("CancelRegistration's promoted", true, resp.GetPromoted())

	// Anyone else: not found, not listed.
	for _, ctx := range []context.Context{entCtxAt(t.Context(), stranger), instCtx(stranger)} {
		_, err := e.s.GetRegistration(ctx, &talentv1.GetRegistrationRequest{Id: regs[1].GetId()})
		wantCode(t, "a stranger reads a registration", err, codes.NotFound)
		list, err := e.s.ListRegistrations(ctx, &talentv1.ListRegistrationsRequest{EventId: ev.GetId()})
		if err != nil || len(list.GetRegistrations()) != 0 {
			t.Errorf("a stranger lists %d registrations (%v)", len(list.GetRegistrations()), err)
		}
		_, err = e.s.CancelRegistration(ctx, &talentv1.CancelRegistrationRequest{Id: regs[1].GetId()})
		wantCode(t, "a stranger cancels a registration", err, codes.NotFound)
	}
}
