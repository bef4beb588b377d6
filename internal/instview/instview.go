// Package instview is a service's own view of the registry's institutions,
// for services that act for institutions (the catalog, the talent base)
// and never read the registry's storage.
//
// A service keeps one record per institution in its own store.Store: a
// View, the few fields it decides with (id, credit code, Chinese name,
// kind, state) and the registry's version of them. The registry's events
// feed it through a durable consumer (FeedConfig, internal/consumer):
// FromEvent turns one event into a View, the service writes it unless
// the view already holds a newer version (Replaces, Put), and acts on the
// change in its own way (the catalog pauses a suspended institution's
// products, the talent base flags its events). Get and ByCode read a view,
// Await waits for views a seed needs.
//
// # Stored format
//
// A view is the JSON of View under the record kind the service names (both
// name it "institution"), with one index term, TermCode and the credit
// code. The field names are those the services stored before this package,
// so their records still decode; a field a service did not keep then (the
// catalog the name, the talent base the kind) reads as its zero value until
// the institution's next event rewrites the view.
//
// # The fence
//
// A view read from the store remembers the record's version, and Put
// expects it; a view built by FromEvent expects what Replaces took from the
// view it replaces. So an action that depends on the institution's state
// (publishing) writes the view back unchanged in its own batch, and the
// feed writes the new view checked too: whichever commits second fails its
// check and reads again, and the action either happened before the change
// (and the service handles it with the change) or sees the change.
//
// # Errors
//
// Errors say what failed but name no package: each service prefixes its own
// name ("catalog: read institution …"), as it did before this package.
package instview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/services/registry"
)

// TermCode prefixes a view's index term by credit code, for callers named
// by their organisation.
const TermCode = "code="

// View is a service's view of one registry institution. The JSON field
// names are the stored format (see the package doc).
type View struct {
	ID         string                      `json:"id"`
	CreditCode string                      `json:"credit_code"`
	NameZh     string                      `json:"name_zh"`
	Kind       registryv1.InstitutionKind  `json:"kind"`
	State      registryv1.InstitutionState `json:"state"`
	// Version is the registry's version of the institution the view holds.
	Version int64 `json:"version"`

	rec int64 // the view record's store version, for the fence
}

// Active reports whether the institution is ACTIVE.
func (v *View) Active() bool {
	return v.State == registryv1.InstitutionState_INSTITUTION_STATE_ACTIVE
}

// Replaces readies v, built from an event, to replace old, the view the
// store holds (nil: none yet). It is false when old holds a newer registry
// version, and v must not be written; otherwise v's Put expects old's
// record version (or no record). The same version replaces: a redelivered
// event writes its view again.
func (v *View) Replaces(old *View) bool {
	v.rec = store.MustNotExist
	if old == nil {
		return true
	}
	if old.Version > v.Version {
		return false
	}
	v.rec = old.rec
	return true
}

// Put is the write of v as a record of kind, expecting the record version
// v was read at (or that Replaces took): the fence (see the package doc).
func (v *View) Put(kind string) (store.Put, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return store.Put{}, fmt.Errorf("marshal institution view: %w", err)
	}
	return store.Put{Kind: kind, ID: v.ID, Expect: v.rec, Data: data, Index: []string{TermCode + v.CreditCode}}, nil
}

// Decode reads a stored view.
func Decode(rec store.Record) (*View, error) {
	v := &View{}
	if err := json.Unmarshal(rec.Data, v); err != nil {
		return nil, fmt.Errorf("decode institution view %s: %w", rec.ID, err)
	}
	v.rec = rec.Version
	return v, nil
}

// Get reads the view of institution id, a record of kind in st; nil when
// there is none.
func Get(ctx context.Context, st store.Store, kind, id string) (*View, error) {
	rec, err := st.Get(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read institution %s: %w", id, err)
	}
	return Decode(rec)
}

// ByCode reads the view of the institution with credit code code; nil when
// there is none, or code is empty.
func ByCode(ctx context.Context, st store.Store, kind, code string) (*View, error) {
	if code == "" {
		return nil, nil
	}
	page, err := st.List(ctx, kind, store.Query{Index: TermCode + code, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("find institution %s: %w", code, err)
	}
	if len(page.Records) == 0 {
		return nil, nil
	}
	return Decode(page.Records[0])
}

// Await reads the views of need's credit codes every interval until st
// holds each of them, ACTIVE where need says true, and returns them by
// code. When ctx ends first it returns the codes still missing, sorted,
// with ctx's error; a store error while ctx lasts is returned at once.
func Await(ctx context.Context, st store.Store, kind string, need map[string]bool, every time.Duration) (map[string]*View, []string, error) {
	views := make(map[string]*View, len(need))
	for {
		var missing []string
		for code, active := range need {
			v, err := ByCode(ctx, st, kind, code)
			if err != nil && ctx.Err() == nil {
				return nil, nil, err
			}
			if v == nil || (active && !v.Active()) {
				missing = append(missing, code)
				continue
			}
			views[code] = v
		}
		if len(missing) == 0 {
			return views, nil, nil
		}
		select {
		case <-ctx.Done():
			slices.Sort(missing)
			return nil, missing, ctx.Err()
		case <-time.After(every):
		}
	}
}

// FeedConfig is the configuration of a consumer named durable that feeds
// views from every event of the REGISTRY stream.
func FeedConfig(durable string) consumer.Config {
	return consumer.Config{
		Stream:         events.StreamName(registry.Name),
		Durable:        durable,
		FilterSubjects: []string{registry.SubjectAll},
	}
}

// FromEvent is the view a registry event carries: its payload, the
// institution's new state, at the envelope's entity version. The payload
// must be an institution with a credit code, the one the envelope names.
func FromEvent(env *eventv1.Envelope) (*View, error) {
	msg := &registryv1.Institution{}
	if err := env.GetPayload().UnmarshalTo(msg); err != nil {
		return nil, fmt.Errorf("registry event %s: payload: %w", env.GetId(), err)
	}
	if msg.GetId() != env.GetEntityId() || msg.GetCreditCode() == "" {
		return nil, fmt.Errorf("registry event %s: payload is institution %q (code %q), envelope names %q",
			env.GetId(), msg.GetId(), msg.GetCreditCode(), env.GetEntityId())
	}
	return &View{ID: msg.GetId(), CreditCode: msg.GetCreditCode(), NameZh: msg.GetNameZh(), Kind: msg.GetKind(),
		State: msg.GetState(), Version: env.GetEntityVersion()}, nil
}
