package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Record kinds in the catalog's store namespace.
const (
	// kindProduct: one product per record, id = product id, data = a
	// marshalled catalogv1.Product.
	kindProduct = "product"
	// kindInstitution: the catalog's view of one institution (institutions.go).
	kindInstitution = "institution"
	// kindSeed marks a demo product as loaded: id = the seed's key, written
	// with MustNotExist in the product's creation batch.
	kindSeed = "seed_product"
)

// Index term prefixes of a product.
const (
	termState       = "state="
	termCategory    = "category="
	termInstitution = "institution="
)

func productTerms(p *Product) []string {
	return []string{termState + p.State.String(), termCategory + p.Category.String(), termInstitution + p.InstitutionID}
}

// updateRetries bounds re-reads when the caller pinned no version.
const updateRetries = 3

// errNoChange: the update would change nothing; nothing is written.
var errNoChange = errors.New("no change")

// productPut is the write of p at its new version, expecting read, with its
// event.
func productPut(ctx context.Context, p *Product, read int64, subject string, now time.Time) (store.Put, store.Event, error) {
	msg := toProtoProduct(p)
	data, err := proto.Marshal(msg)
	if err != nil {
		return store.Put{}, store.Event{}, fmt.Errorf("catalog: marshal product: %w", err)
	}
	ev, err := ctxEvent(ctx, subject, p.ID, p.Version, msg, now)
	if err != nil {
		return store.Put{}, store.Event{}, err
	}
	return store.Put{Kind: kindProduct, ID: p.ID, Expect: read, Data: data, Index: productTerms(p)}, ev, nil
}

// create stores a new product and its event, with extra puts (a seed mark)
// in the same batch.
func (s *Server) create(ctx context.Context, p *Product, now time.Time, extra ...store.Put) error {
	p.Version = 1
	put, ev, err := productPut(ctx, p, store.MustNotExist, SubjectCreated, now)
	if err != nil {
		return err
	}
	if _, err := s.st.Apply(ctx, store.Batch{Puts: append([]store.Put{put}, extra...), Events: []store.Event{ev}}); err != nil {
		return fmt.Errorf("catalog: create product: %w", err)
	}
	return nil
}

// get reads one product; NotFound names the id.
func (s *Server) get(ctx context.Context, id string) (*Product, error) {
	rec, err := s.st.Get(ctx, kindProduct, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errs.NotFound("product", id)
	}
	if err != nil {
		return nil, fmt.Errorf("catalog: get %s: %w", id, err)
	}
	return decodeProduct(rec)
}

// change is what an update closure decides: the subject of the change's
// event, and puts to commit with it (the publish fence).
type change struct {
	subject string
	extra   []store.Put
}

// update reads a product, lets fn change it, and writes it back with its
// event, expecting the version read. want is the caller's version (0: none);
// fn sees the product only after want is checked. A concurrent write answers
// Aborted when the caller pinned a version, and is retried otherwise.
func (s *Server) update(ctx context.Context, id string, want int64, fn func(p *Product, now time.Time) (change, error)) (*Product, error) {
	for attempt := 1; ; attempt++ {
		p, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ownsProduct(ctx, p) {
			return nil, errs.NotFound("product", id)
		}
		if want != 0 {
			if err := p.CheckVersion(want); err != nil {
				return nil, err
			}
		}
		read := p.Version
		now := s.now().UTC()
		c, err := fn(p, now)
		if errors.Is(err, errNoChange) {
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		p.Version = read + 1
		p.Updated = now
		put, ev, err := productPut(ctx, p, read, c.subject, now)
		if err != nil {
			return nil, err
		}
		_, err = s.st.Apply(ctx, store.Batch{Puts: append([]store.Put{put}, c.extra...), Events: []store.Event{ev}})
		var ce *store.ConflictError
		switch {
		case err == nil:
			return p, nil
		case errors.As(err, &ce) && (want == 0 || ce.Kind != kindProduct) && attempt < updateRetries:
			continue
		case errors.As(err, &ce) && ce.Kind == kindProduct:
			return nil, errs.New(ErrStaleVersion, "product %s changed while this change was made (version %d read, now %d); read it again", id, read, ce.Current)
		case errors.As(err, &ce):
			return nil, errs.Aborted("the institution of product %s changed state while this change was made; try again", id)
		default:
			return nil, fmt.Errorf("catalog: update %s: %w", id, err)
		}
	}
}

// scan calls fn for every product under the index term, in id order.
func (s *Server) scan(ctx context.Context, term string, match func(*Product) bool, fn func(*Product) error) error {
	q := store.Query{Index: term, Limit: store.MaxLimit}
	if match != nil {
		q.Match = func(rec store.Record) bool {
			p, err := decodeProduct(rec)
			return err != nil || match(p)
		}
	}
	for {
		page, err := s.st.List(ctx, kindProduct, q)
		if err != nil {
			return fmt.Errorf("catalog: list %q: %w", term, err)
		}
		for _, rec := range page.Records {
			p, err := decodeProduct(rec)
			if err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		if page.Next == "" || (len(page.Records) == 0 && page.Next == q.After) {
			return nil
		}
		q.After = page.Next
	}
}

// decodeProduct turns a stored record into the domain type; the record's
// version is authoritative.
func decodeProduct(rec store.Record) (*Product, error) {
	msg := &catalogv1.Product{}
	if err := proto.Unmarshal(rec.Data, msg); err != nil {
		return nil, fmt.Errorf("catalog: decode product %s: %w", rec.ID, err)
	}
	p, err := fromProtoStored(msg)
	if err != nil {
		return nil, fmt.Errorf("catalog: decode product %s: %w", rec.ID, err)
	}
	p.Version = rec.Version
	return p, nil
}
