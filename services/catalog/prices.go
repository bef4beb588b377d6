package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Reference carbon prices live in the catalog's store as a small record
// staff set, not in configuration: the market moves weekly, the desk's staff
// change them without a deploy, each setting is kept (who, when, from what
// source) because a match's collateral valuation must be explainable after
// the fact, and each setting is an event matching can follow. The current
// prices are one record (kindPrices/currentPrices); every setting is also
// written, in the same batch, to the history (kindPriceHistory), keyed so
// the store's id order is newest first.
const (
	kindPrices       = "reference_prices"
	kindPriceHistory = "reference_prices_history"
	currentPrices    = "current"

	maxPriceYuan   = 100_000 // per tonne; CEA has traded at ¥40–¥110
	maxSource      = 200
	defaultHistory = 10
	maxHistory     = 100
)

// Prices are reference carbon prices in whole yuan per tonne.
type Prices struct {
	CEA, CCER int64
	Source    string
	SetBy     string
	Time      time.Time
	Version   int64
}

func historyID(version int64) string { return fmt.Sprintf("%019d", math.MaxInt64-version) }

func toProtoPrices(p Prices) *catalogv1.ReferencePrices {
	return &catalogv1.ReferencePrices{CeaYuanPerTonne: p.CEA, CcerYuanPerTonne: p.CCER, Source: p.Source, SetBy: p.SetBy,
		SetTime: timestamppb.New(p.Time.UTC()), Version: p.Version}
}

func decodePrices(rec store.Record) (Prices, error) {
	m := &catalogv1.ReferencePrices{}
	if err := proto.Unmarshal(rec.Data, m); err != nil {
		return Prices{}, fmt.Errorf("catalog: decode reference prices: %w", err)
	}
	return Prices{CEA: m.GetCeaYuanPerTonne(), CCER: m.GetCcerYuanPerTonne(), Source: m.GetSource(), SetBy: m.GetSetBy(),
		Time: m.GetSetTime().AsTime(), Version: m.GetVersion()}, nil
}

// ReferencePrices returns the current reference prices, and false when none
// were ever set. Matching in the same process may call it directly.
func (s *Server) ReferencePrices(ctx context.Context) (Prices, bool, error) {
	rec, err := s.st.Get(ctx, kindPrices, currentPrices)
	if errors.Is(err, store.ErrNotFound) {
		return Prices{}, false, nil
	}
	if err != nil {
		return Prices{}, false, fmt.Errorf("catalog: read reference prices: %w", err)
	}
	p, err := decodePrices(rec)
	return p, err == nil, err
}

// setPrices records new prices expecting the current version want (0: no
// check) and publishes SubjectReferencePricesSet.
func (s *Server) setPrices(ctx context.Context, cea, ccer int64, source string, want int64) (Prices, error) {
	var v errs.Violations
	for _, f := range []struct {
		name string
		val  int64
	}{{"cea_yuan_per_tonne", cea}, {"ccer_yuan_per_tonne", ccer}} {
		if f.val < 1 || f.val > maxPriceYuan {
			v.Add(f.name, "%d: a reference price is 1 to %d yuan per tonne, whole yuan", f.val, maxPriceYuan)
		}
	}
	source = strings.TrimSpace(source)
	switch n := utf8.RuneCountInString(source); {
	case n == 0:
		v.Add("source", "say where the prices come from (e.g. national ETS weekly closing average)")
	case n > maxSource:
		v.Add("source", "is %d characters long; at most %d", n, maxSource)
	}
	if want < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0 to skip the check", want)
	}
	if err := v.Err(); err != nil {
		return Prices{}, err
	}
	cur, ok, err := s.ReferencePrices(ctx)
	if err != nil {
		return Prices{}, err
	}
	if want != 0 && want != cur.Version {
		return Prices{}, errs.New(ErrStaleVersion, "version %d is stale; the reference prices are at version %d; read them again", want, cur.Version)
	}
	expect := store.MustNotExist
	if ok {
		expect = cur.Version
	}
	now := s.now().UTC()
	actor := events.ActorFrom(ctx)
	p := Prices{CEA: cea, CCER: ccer, Source: source, SetBy: actor.Subject, Time: now, Version: cur.Version + 1}
	msg := toProtoPrices(p)
	data, err := proto.Marshal(msg)
	if err != nil {
		return Prices{}, fmt.Errorf("catalog: marshal reference prices: %w", err)
	}
	ev, err := event(actor, SubjectReferencePricesSet, ReferencePricesID, p.Version, msg, now)
	if err != nil {
		return Prices{}, err
	}
	// The current record's store version equals the prices' version: it is
	// written once per setting and never otherwise.
	_, err = s.st.Apply(ctx, store.Batch{
		Puts: []store.Put{
			{Kind: kindPrices, ID: currentPrices, Expect: expect, Data: data},
			{Kind: kindPriceHistory, ID: historyID(p.Version), Expect: store.MustNotExist, Data: data},
		},
		Events: []store.Event{ev},
	})
	if errors.Is(err, store.ErrConflict) {
		return Prices{}, errs.New(ErrStaleVersion, "the reference prices changed while they were being set; read them again")
	}
	if err != nil {
		return Prices{}, fmt.Errorf("catalog: set reference prices: %w", err)
	}
	s.log.InfoContext(ctx, "catalog: reference prices set", "cea", cea, "ccer", ccer, "version", p.Version, "actor", actor.Subject)
	return p, nil
}

// priceHistory returns up to n settings, newest first.
func (s *Server) priceHistory(ctx context.Context, n int) ([]Prices, error) {
	page, err := s.st.List(ctx, kindPriceHistory, store.Query{Limit: n})
	if err != nil {
		return nil, fmt.Errorf("catalog: reference price history: %w", err)
	}
	out := make([]Prices, 0, len(page.Records))
	for _, rec := range page.Records {
		p, err := decodePrices(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
