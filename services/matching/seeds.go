package matching

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// SeedPath is where matching's demo data sit inside the seeds folder.
const SeedPath = "matching/demands.json"

// kindSeed marks a seed demand as posted: id = the seed's key, written in
// the batch that posts it.
const kindSeed = "seed"

// SeedFile is the JSON shape of SeedPath, shared by LoadSeeds and the
// 'carbondesk seed' client.
type SeedFile struct {
	Note        string           `json:"note"`
	Enterprises []SeedEnterprise `json:"enterprises"`
	Demands     []SeedDemand     `json:"demands"`
}

// SeedEnterprise is an enterprise the seeded demands name by Key.
type SeedEnterprise struct {
	Key        string `json:"key"`
	CreditCode string `json:"credit_code"`
	Name       string `json:"name"`
	Sector     string `json:"sector"`
	ETSCovered bool   `json:"ets_covered"`
	Region     string `json:"region"`
	Zone       string `json:"zone"`
	Emissions  int64  `json:"annual_emissions_tonnes"`
}

// SeedDeal is the deal a seeded demand's completed outcome reports.
type SeedDeal struct {
	AmountYuan int64  `json:"amount_yuan"`
	RateBps    int32  `json:"rate_bps"`
	TermMonths int32  `json:"term_months"`
	Tonnes     int64  `json:"tonnes"`
	Note       string `json:"note"`
}

// SeedDemand is one demand to post for a SeedEnterprise, with the steps
// LoadSeeds plays on its proposals.
type SeedDemand struct {
	Key          string   `json:"key"`
	Enterprise   string   `json:"enterprise"`
	Kind         string   `json:"kind"`
	Categories   []string `json:"categories"`
	AmountYuan   int64    `json:"amount_yuan"`
	TermMonths   int32    `json:"term_months"`
	CEATonnes    int64    `json:"cea_tonnes"`
	CCERTonnes   int64    `json:"ccer_tonnes"`
	Description  string   `json:"description"`
	DeadlineDays int      `json:"deadline_days"`
	// Steps played after posting, on the best-ranked proposals.
	Accept  int  `json:"accept"`
	Decline int  `json:"decline"`
	Confirm bool `json:"confirm"`
	Outcome *struct {
		Completed *SeedDeal `json:"completed"`
		Failed    string    `json:"failed"`
		Note      string    `json:"note"`
	} `json:"outcome"`
}

// LoadSeeds posts the demo demands of SeedPath in fsys through s as the
// system actor and plays each one's steps (accepts, declines, a
// confirmation, an outcome), so a first start shows a pipeline in every
// state. It waits for the index to catch up when Run is going (the demands
// are ranked against the catalog's seeded products). Idempotent: a demand
// whose key was posted before is skipped. A missing file is an error for
// which errors.Is(err, fs.ErrNotExist) holds.
func LoadSeeds(ctx context.Context, s *Server, fsys fs.FS) error {
	data, err := fs.ReadFile(fsys, SeedPath)
	if err != nil {
		return fmt.Errorf("matching: seeds: %w", err)
	}
	var f SeedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("matching: seeds: %s: %w", SeedPath, err)
	}
	if s.running.Load() {
		if err := s.WaitCaughtUp(ctx); err != nil {
			return fmt.Errorf("matching: seeds: waiting for the index: %w", err)
		}
	}
	ctx = events.WithActor(ctx, events.System)
	ents := map[string]SeedEnterprise{}
	for _, e := range f.Enterprises {
		ents[e.Key] = e
	}
	for i, sd := range f.Demands {
		if err := s.loadSeed(ctx, sd, ents[sd.Enterprise]); err != nil {
			return fmt.Errorf("matching: seeds: %s entry %d (%s): %w", SeedPath, i, sd.Key, err)
		}
	}
	return nil
}

func (s *Server) loadSeed(ctx context.Context, sd SeedDemand, e SeedEnterprise) error {
	if e.Key == "" {
		return fmt.Errorf("unknown enterprise %q", sd.Enterprise)
	}
	if _, err := s.st.Get(ctx, kindSeed, sd.Key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var cats []catalogv1.ProductCategory
	for _, c := range sd.Categories {
		cats = append(cats, catalogv1.ProductCategory(catalogv1.ProductCategory_value["PRODUCT_CATEGORY_"+c]))
	}
	now := s.now()
	in := &matchingv1.Demand{
		EnterpriseCreditCode: e.CreditCode, EnterpriseName: e.Name,
		Sector: catalogv1.Sector(catalogv1.Sector_value["SECTOR_"+e.Sector]), EtsCovered: e.ETSCovered,
		Region: e.Region, Zone: registryv1.Zone(registryv1.Zone_value["ZONE_"+e.Zone]),
		Kind: catalogv1.DemandKind(catalogv1.DemandKind_value["DEMAND_KIND_"+sd.Kind]), Categories: cats,
		AmountYuan: sd.AmountYuan, TermMonths: sd.TermMonths, CeaTonnes: sd.CEATonnes, CcerTonnes: sd.CCERTonnes,
		AnnualEmissionsTonnes: e.Emissions, Description: sd.Description,
		Deadline: timestamppb.New(now.Add(time.Duration(sd.DeadlineDays) * 24 * time.Hour)),
	}
	d, err := validateDemand(ctx, in, now)
	if err != nil {
		return err
	}
	a, err := s.post(ctx, d, store.Put{Kind: kindSeed, ID: sd.Key, Expect: store.MustNotExist, Data: []byte(sd.Key)})
	if err != nil {
		return err
	}

	// The steps, on the proposals in rank order.
	ms := a.matches
	step := func(m *matchingv1.Match, rule func(*aggregate, *matchingv1.Match) error) error {
		_, err := s.mutate(ctx, d.Id, func(a *aggregate) error { return rule(a, a.match(m.GetId())) })
		return err
	}
	var accepted []*matchingv1.Match
	for i, m := range ms {
		var err error
		switch {
		case i < sd.Accept:
			err = step(m, func(a *aggregate, m *matchingv1.Match) error { return a.accept(m) })
			accepted = append(accepted, m)
		case i < sd.Accept+sd.Decline:
			err = step(m, func(a *aggregate, m *matchingv1.Match) error { return a.decline(m, "超出本行授信范围") })
		}
		if err != nil {
			return err
		}
	}
	if !sd.Confirm || len(accepted) == 0 {
		return nil
	}
	chosen := accepted[0]
	if err := step(chosen, func(a *aggregate, m *matchingv1.Match) error { return a.confirm(m) }); err != nil {
		return err
	}
	if o := sd.Outcome; o != nil {
		var out *matchingv1.Outcome
		completed := o.Completed != nil
		if completed {
			c := o.Completed
			out = &matchingv1.Outcome{AmountYuan: c.AmountYuan, RateBps: c.RateBps, TermMonths: c.TermMonths, Tonnes: c.Tonnes, Note: c.Note}
		} else {
			out = &matchingv1.Outcome{FailureReason: matchingv1.FailureReason(matchingv1.FailureReason_value["FAILURE_REASON_"+o.Failed]), Note: o.Note}
		}
		if err := step(chosen, func(a *aggregate, m *matchingv1.Match) error { return a.report(m, out, completed) }); err != nil {
			return err
		}
	}
	return nil
}
