package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/width"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	registryv1 "github.com/carbondesk/carbondesk/gen/carbondesk/registry/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/instview"
	"github.com/carbondesk/carbondesk/internal/paging"
	"github.com/carbondesk/carbondesk/internal/protoenum"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Server implements catalogv1.CatalogServiceServer over a store.Store.
// Handlers return domain errors (package errs); the gRPC server's
// interceptor turns them into statuses.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer

	st       store.Store
	now      func() time.Time
	log      *slog.Logger
	feedCfg  func(*consumer.Config)
	seedWait time.Duration
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock (default time.Now); tests pin it.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithFeedConfig adjusts the institution feed's consumer configuration
// (FeedConfig) before RunInstitutionFeed starts it: replicas of the
// dead-letter stream, retry delays in tests.
func WithFeedConfig(fn func(*consumer.Config)) Option { return func(s *Server) { s.feedCfg = fn } }

// WithSeedWait sets how long LoadSeeds waits for the institution view to
// hold the seeded institutions (default 30 s).
func WithSeedWait(d time.Duration) Option { return func(s *Server) { s.seedWait = d } }

// New returns the catalog service over st, which must be scoped to the
// catalog (see store.Store).
func New(st store.Store, opts ...Option) *Server {
	s := &Server{st: st, now: time.Now, log: slog.New(slog.DiscardHandler), seedWait: 30 * time.Second}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register registers the service on a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	catalogv1.RegisterCatalogServiceServer(g, s)
}

// visible: staff see all; others their own organisation's products and
// every PUBLISHED one.
func visible(ctx context.Context, p *Product) bool {
	return p.State == StatePublished || auth.Owns(ctx, p.OwnerCode)
}

// ownsProduct: the caller may change the product.
func ownsProduct(ctx context.Context, p *Product) bool { return auth.Owns(ctx, p.OwnerCode) }

// CreateProduct files a new DRAFT product for an institution.
func (s *Server) CreateProduct(ctx context.Context, req *catalogv1.CreateProductRequest) (*catalogv1.CreateProductResponse, error) {
	var v errs.Violations
	if req.GetProduct() == nil {
		v.Add("product", "is required: the product's terms")
		return nil, v.Err()
	}
	t := fromProtoTerms("product.", req.GetProduct(), &v).Clean()
	t.Validate("product.", &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	in, err := s.owner(ctx, req.GetInstitutionId())
	if err != nil {
		return nil, err
	}
	p, err := s.createFor(ctx, in, t)
	if err != nil {
		return nil, err
	}
	return &catalogv1.CreateProductResponse{Product: toProtoProduct(p)}, nil
}

// owner finds the institution a new product belongs to: the one named, or
// for an institution caller its own.
func (s *Server) owner(ctx context.Context, id string) (*Institution, error) {
	c, isCaller := auth.CallerFrom(ctx)
	var in *Institution
	var err error
	switch {
	case id != "":
		in, err = s.institution(ctx, id)
	case !auth.IsStaff(ctx):
		in, err = s.institutionByCode(ctx, c.Org)
	default:
		return nil, errs.Invalid("institution_id", "is required: the registry id of the institution offering the product")
	}
	if err != nil {
		return nil, err
	}
	if in == nil {
		if id == "" {
			return nil, errs.New(ErrUnknownInstitution, "the catalog knows no institution with credit code %q; register at the registry first (a new registration takes a moment to reach the catalog)", c.Org)
		}
		return nil, errs.New(ErrUnknownInstitution, "the catalog knows no institution %q; register it at the registry first (a new registration takes a moment to reach the catalog)", id)
	}
	if isCaller && !auth.Owns(ctx, in.CreditCode) {
		return nil, errs.PermissionDenied("an institution creates products only for itself: institution %s is not your organisation", id)
	}
	if in.State == registryv1.InstitutionState_INSTITUTION_STATE_REJECTED {
		return nil, errs.New(ErrInstitutionNotActive, "institution %s was rejected by the registry; it offers no products", in.ID)
	}
	return in, nil
}

func (s *Server) createFor(ctx context.Context, in *Institution, t Terms, extra ...store.Put) (*Product, error) {
	now := s.now().UTC()
	p := NewProduct(events.NewID(now), in.ID, in.CreditCode, t, now)
	if err := s.create(ctx, p, now, extra...); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "catalog: product created", "id", p.ID, "institution", in.ID, "actor", events.ActorFrom(ctx).Subject)
	return p, nil
}

// GetProduct reads one product.
func (s *Server) GetProduct(ctx context.Context, req *catalogv1.GetProductRequest) (*catalogv1.GetProductResponse, error) {
	if req.GetId() == "" {
		return nil, errs.Invalid("id", "is required")
	}
	p, err := s.get(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !visible(ctx, p) {
		return nil, errs.NotFound("product", req.GetId())
	}
	return &catalogv1.GetProductResponse{Product: toProtoProduct(p)}, nil
}

// listFilter is what ListProducts selects on.
type listFilter struct {
	institution string
	category    Category
	state       State
	sector      Sector
	region      string
	amount      int64
	name        string // folded
}

func (f listFilter) fingerprint() string {
	return paging.Fingerprint(fmt.Appendf(nil, "%s|%s|%s|%s|%s|%d|%s", f.institution, f.category, f.state, f.sector, f.region, f.amount, f.name))
}

// term picks the index to scan, the likely smallest: an institution's
// products, then a category (sixteen ways), then a state other than
// PUBLISHED, then PUBLISHED (also for callers who can see nothing else).
func (f listFilter) term(publishedOnly bool) string {
	switch {
	case f.institution != "":
		return termInstitution + f.institution
	case !f.category.IsZero():
		return termCategory + f.category.String()
	case !f.state.IsZero():
		return termState + f.state.String()
	case publishedOnly:
		return termState + StatePublished.String()
	}
	return ""
}

func (f listFilter) matches(p *Product) bool {
	return (f.institution == "" || p.InstitutionID == f.institution) &&
		(f.category.IsZero() || p.Category == f.category) &&
		(f.state.IsZero() || p.State == f.state) &&
		(f.sector.IsZero() || p.EligibleSector(f.sector)) &&
		(f.region == "" || p.EligibleRegion(f.region)) &&
		(f.amount == 0 || p.Amount.Covers(f.amount)) &&
		(f.name == "" || strings.Contains(foldName(p.NameZh), f.name) || strings.Contains(foldName(p.NameEn), f.name))
}

func foldName(s string) string { return strings.ToLower(width.Fold.String(s)) }

// ListProducts lists products in creation order (ids are ULIDs), filtered
// and paged. The page token is the last id returned: a product created
// while a caller pages sorts after every earlier one, so paging neither
// loses nor repeats a product, whatever is written meanwhile.
func (s *Server) ListProducts(ctx context.Context, req *catalogv1.ListProductsRequest) (*catalogv1.ListProductsResponse, error) {
	var v errs.Violations
	size := paging.Size(&v, req.GetPageSize())
	f := listFilter{institution: strings.TrimSpace(req.GetInstitutionId()), region: strings.TrimSpace(req.GetRegion()), amount: req.GetAmountYuan()}
	var ok bool
	if f.category, ok = categoryFromProto(req.GetCategory()); !ok {
		v.Add("category", "unknown value %d", req.GetCategory())
	}
	if f.state, ok = stateFromProto(req.GetState()); !ok {
		v.Add("state", "unknown value %d", req.GetState())
	}
	if f.sector, ok = sectorFromProto(req.GetSector()); !ok {
		v.Add("sector", "unknown value %d", req.GetSector())
	}
	if f.region != "" {
		if msg := checkRegion(f.region); msg != "" {
			v.Add("region", "%q %s", errs.Shorten(f.region, 20), msg)
		}
	}
	if f.amount < 0 {
		v.Add("amount_yuan", "%d is negative; give an amount in yuan, or 0 for any", f.amount)
	}
	if len(f.institution) > 64 {
		v.Add("institution_id", "is %d bytes long; an id is at most 64", len(f.institution))
	}
	name := strings.TrimSpace(req.GetNameContains())
	if n := utf8.RuneCountInString(name); n > maxNameContains {
		v.Add("name_contains", "is %d characters long; at most %d", n, maxNameContains)
	}
	f.name = foldName(name)
	after := paging.Check{Refilter: "repeat the first call's filters"}.After(&v, req.GetPageToken(), f.fingerprint())
	if err := v.Err(); err != nil {
		return nil, err
	}

	// Callers who are neither staff nor an institution see only PUBLISHED
	// products; scanning that index spares reading the rest.
	c, _ := auth.CallerFrom(ctx)
	publishedOnly := !auth.IsStaff(ctx) && c.Role != auth.Institution
	match := func(rec store.Record) bool {
		p, err := decodeProduct(rec)
		return err != nil || (f.matches(p) && visible(ctx, p)) // a bad record surfaces as an error below
	}
	q := store.Query{Index: f.term(publishedOnly), After: after, Match: match}
	recs, next, err := paging.List(ctx, s.st, kindProduct, q, size, f.fingerprint())
	if err != nil {
		return nil, fmt.Errorf("catalog: list products: %w", err)
	}
	got := make([]*Product, 0, len(recs))
	for _, rec := range recs {
		p, err := decodeProduct(rec)
		if err != nil {
			return nil, err
		}
		got = append(got, p)
	}
	resp := &catalogv1.ListProductsResponse{NextPageToken: next}
	resp.Products = make([]*catalogv1.Product, len(got))
	for i, p := range got {
		resp.Products[i] = toProtoProduct(p)
	}
	return resp, nil
}

// updatablePaths are the update_mask paths UpdateProduct applies.
var updatablePaths = []string{"name_zh", "name_en", "category", "demand_kinds", "amount", "term", "price", "sectors", "regions", "collateral", "description", "contact"}

// fixedPaths are Product fields an update may not name, with why.
var fixedPaths = map[string]string{
	"id":                      "is assigned at creation",
	"institution_id":          "is the owner; create the product anew under another institution",
	"institution_credit_code": "is the owner's",
	"state":                   "changes only through PublishProduct, PauseProduct and RetireProduct",
	"state_reason":            "is set with the state",
	"version":                 "is the store's; give the version you read in the request's version field",
	"create_time":             "is set by the service",
	"update_time":             "is set by the service",
}

// UpdateProduct changes a product's terms, expecting the version read.
func (s *Server) UpdateProduct(ctx context.Context, req *catalogv1.UpdateProductRequest) (*catalogv1.UpdateProductResponse, error) {
	var v errs.Violations
	if req.GetId() == "" {
		v.Add("id", "is required")
	}
	if req.GetVersion() <= 0 {
		v.Add("version", "%d: give the version you read (GetProduct's product.version)", req.GetVersion())
	}
	msg := req.GetProduct()
	if msg == nil {
		v.Add("product", "is required: the new values of the fields to change")
		return nil, v.Err()
	}
	if msg.GetId() != "" && msg.GetId() != req.GetId() {
		v.Add("product.id", "%q differs from id %q; leave it empty or the same", errs.Shorten(msg.GetId(), 40), errs.Shorten(req.GetId(), 40))
	}
	var paths []string
	if mask := req.GetUpdateMask(); mask != nil && len(mask.GetPaths()) > 0 {
		for _, p := range mask.GetPaths() {
			switch {
			case p == "*":
				paths = append(paths, updatablePaths...)
			case fixedPaths[p] != "":
				v.Add("update_mask", "path %q cannot be changed here: %s", p, fixedPaths[p])
			case !slices.Contains(updatablePaths, p):
				v.Add("update_mask", "unknown path %q; updatable paths are %s", errs.Shorten(p, 40), strings.Join(updatablePaths, ", "))
			default:
				paths = append(paths, p)
			}
		}
	} else {
		paths = impliedPaths(msg)
		if len(paths) == 0 {
			v.Add("product", "sets no field to change; set one of %s, or name fields to clear in update_mask", strings.Join(updatablePaths, ", "))
		}
	}
	patch := fromProtoTerms("product.", msg, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := s.update(ctx, req.GetId(), req.GetVersion(), func(p *Product, _ time.Time) (change, error) {
		if p.State == StateRetired {
			return change{}, errs.New(ErrInvalidTransition, "product %s is RETIRED; a retired product is not changed (create a new one)", p.ID)
		}
		t := applyPaths(p.Terms, patch, paths).Clean()
		var v errs.Violations
		t.Validate("product.", &v)
		if err := v.Err(); err != nil {
			return change{}, err
		}
		if t.Equal(p.Terms) {
			return change{}, errNoChange
		}
		p.Terms = t
		return change{subject: SubjectUpdated}, nil
	})
	if err != nil {
		return nil, err
	}
	return &catalogv1.UpdateProductResponse{Product: toProtoProduct(p)}, nil
}

// impliedPaths: every updatable field given a value (AIP-134); output-only
// fields are ignored so a client may send back what it read.
func impliedPaths(m *catalogv1.Product) []string {
	var p []string
	add := func(set bool, path string) {
		if set {
			p = append(p, path)
		}
	}
	add(m.GetNameZh() != "", "name_zh")
	add(m.GetNameEn() != "", "name_en")
	add(m.GetCategory() != 0, "category")
	add(len(m.GetDemandKinds()) > 0, "demand_kinds")
	add(m.GetAmount() != nil, "amount")
	add(m.GetTerm() != nil, "term")
	add(m.GetPrice() != nil, "price")
	add(len(m.GetSectors()) > 0, "sectors")
	add(len(m.GetRegions()) > 0, "regions")
	add(m.GetCollateral() != nil, "collateral")
	add(m.GetDescription() != "", "description")
	add(m.GetContact() != nil, "contact")
	return p
}

func applyPaths(t, patch Terms, paths []string) Terms {
	for _, p := range paths {
		switch p {
		case "name_zh":
			t.NameZh = patch.NameZh
		case "name_en":
			t.NameEn = patch.NameEn
		case "category":
			t.Category = patch.Category
		case "demand_kinds":
			t.DemandKinds = patch.DemandKinds
		case "amount":
			t.Amount = patch.Amount
		case "term":
			t.Term = patch.Term
		case "price":
			t.Price = patch.Price
		case "sectors":
			t.Sectors = patch.Sectors
		case "regions":
			t.Regions = patch.Regions
		case "collateral":
			t.Collateral = patch.Collateral
		case "description":
			t.Description = patch.Description
		case "contact":
			t.Contact = patch.Contact
		}
	}
	return t
}

// PublishProduct puts a DRAFT or PAUSED product on offer. The owning
// institution must be ACTIVE in the catalog's view; the view is written back
// unchanged under a version check in the same batch (the fence against a
// suspension arriving meanwhile, see the package doc).
func (s *Server) PublishProduct(ctx context.Context, req *catalogv1.PublishProductRequest) (*catalogv1.PublishProductResponse, error) {
	if err := checkRef(req.GetId(), req.GetVersion()); err != nil {
		return nil, err
	}
	p, err := s.publish(ctx, req.GetId(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &catalogv1.PublishProductResponse{Product: toProtoProduct(p)}, nil
}

func (s *Server) publish(ctx context.Context, id string, version int64) (*Product, error) {
	return s.update(ctx, id, version, func(p *Product, now time.Time) (change, error) {
		in, err := s.institution(ctx, p.InstitutionID)
		if err != nil {
			return change{}, err
		}
		if in == nil {
			return change{}, errs.New(ErrUnknownInstitution, "the catalog has no record of institution %s yet; try again in a moment", p.InstitutionID)
		}
		if err := p.transition(actPublish, "", now); err != nil {
			return change{}, err
		}
		if !in.Active() {
			return change{}, errs.New(ErrInstitutionNotActive, "institution %s is %s; only an ACTIVE institution publishes products", in.ID, protoenum.Key(in.State))
		}
		fence, err := in.Put(kindInstitution)
		if err != nil {
			return change{}, fmt.Errorf("catalog: %w", err)
		}
		return change{subject: SubjectPublished, extra: []store.Put{fence}}, nil
	})
}

// PauseProduct takes a PUBLISHED product off offer.
func (s *Server) PauseProduct(ctx context.Context, req *catalogv1.PauseProductRequest) (*catalogv1.PauseProductResponse, error) {
	p, err := s.simpleTransition(ctx, actPause, SubjectPaused, req.GetId(), req.GetVersion(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &catalogv1.PauseProductResponse{Product: toProtoProduct(p)}, nil
}

// RetireProduct withdraws a product for good.
func (s *Server) RetireProduct(ctx context.Context, req *catalogv1.RetireProductRequest) (*catalogv1.RetireProductResponse, error) {
	p, err := s.simpleTransition(ctx, actRetire, SubjectRetired, req.GetId(), req.GetVersion(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &catalogv1.RetireProductResponse{Product: toProtoProduct(p)}, nil
}

func (s *Server) simpleTransition(ctx context.Context, a action, subject, id string, version int64, reason string) (*Product, error) {
	if err := checkRef(id, version); err != nil {
		return nil, err
	}
	if err := checkReason("reason", reason, false); err != nil {
		return nil, err
	}
	return s.update(ctx, id, version, func(p *Product, now time.Time) (change, error) {
		if err := p.transition(a, reason, now); err != nil {
			return change{}, err
		}
		return change{subject: subject}, nil
	})
}

func checkRef(id string, version int64) error {
	var v errs.Violations
	if id == "" {
		v.Add("id", "is required")
	}
	if version < 0 {
		v.Add("version", "%d is negative; give the version you read, or 0 to skip the check", version)
	}
	return v.Err()
}

// GetCatalogStats counts products by category, state and the owning
// institution's kind. It reads the whole catalog: a district's catalog
// holds thousands of products, not millions.
func (s *Server) GetCatalogStats(ctx context.Context, _ *catalogv1.GetCatalogStatsRequest) (*catalogv1.GetCatalogStatsResponse, error) {
	kinds := map[string]registryv1.InstitutionKind{}
	q := store.Query{Limit: store.MaxLimit}
	for {
		page, err := s.st.List(ctx, kindInstitution, q)
		if err != nil {
			return nil, fmt.Errorf("catalog: stats: institutions: %w", err)
		}
		for _, rec := range page.Records {
			in, err := instview.Decode(rec)
			if err != nil {
				return nil, fmt.Errorf("catalog: %w", err)
			}
			kinds[in.ID] = in.Kind
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	byCategory := map[Category]int64{}
	byState := map[State]int64{}
	byKind := map[registryv1.InstitutionKind]int64{}
	resp := &catalogv1.GetCatalogStatsResponse{}
	err := s.scan(ctx, "", nil, func(p *Product) error {
		resp.Total++
		byCategory[p.Category]++
		byState[p.State]++
		byKind[kinds[p.InstitutionID]]++
		if p.State == StatePublished {
			resp.Published++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.ByCategory = counts(Categories(), byCategory)
	resp.ByState = counts(States(), byState)
	for _, k := range protoenum.All(func(p registryv1.InstitutionKind) registryv1.InstitutionKind { return p }) {
		resp.ByInstitutionKind = append(resp.ByInstitutionKind, &catalogv1.Count{Key: protoenum.Key(k), Count: byKind[k]})
	}
	if n := byKind[0]; n > 0 {
		resp.ByInstitutionKind = append(resp.ByInstitutionKind, &catalogv1.Count{Key: "UNKNOWN", Count: n})
	}
	return resp, nil
}

func counts[T interface {
	comparable
	fmt.Stringer
}](all []T, n map[T]int64) []*catalogv1.Count {
	out := make([]*catalogv1.Count, len(all))
	for i, k := range all {
		out[i] = &catalogv1.Count{Key: k.String(), Count: n[k]}
	}
	return out
}

// GetReferencePrices reads the current reference prices and their history.
func (s *Server) GetReferencePrices(ctx context.Context, req *catalogv1.GetReferencePricesRequest) (*catalogv1.GetReferencePricesResponse, error) {
	n := int(req.GetHistorySize())
	switch {
	case n < 0:
		return nil, errs.Invalid("history_size", "%d is negative; give 0 to %d", n, maxHistory)
	case n == 0:
		n = defaultHistory
	case n > maxHistory:
		n = maxHistory
	}
	resp := &catalogv1.GetReferencePricesResponse{}
	cur, ok, err := s.ReferencePrices(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		resp.Current = toProtoPrices(cur)
	}
	hist, err := s.priceHistory(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, p := range hist {
		resp.History = append(resp.History, toProtoPrices(p))
	}
	return resp, nil
}

// SetReferencePrices records new reference prices.
func (s *Server) SetReferencePrices(ctx context.Context, req *catalogv1.SetReferencePricesRequest) (*catalogv1.SetReferencePricesResponse, error) {
	if !auth.IsStaff(ctx) {
		// The table already refuses other roles; this keeps in-process
		// callers honest too.
		return nil, errs.PermissionDenied("only district staff set reference prices")
	}
	p, err := s.setPrices(ctx, req.GetCeaYuanPerTonne(), req.GetCcerYuanPerTonne(), req.GetSource(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &catalogv1.SetReferencePricesResponse{Prices: toProtoPrices(p)}, nil
}

// Converters.

func toProtoProduct(p *Product) *catalogv1.Product {
	m := &catalogv1.Product{
		Id:                    p.ID,
		InstitutionId:         p.InstitutionID,
		InstitutionCreditCode: p.OwnerCode,
		NameZh:                p.NameZh,
		NameEn:                p.NameEn,
		Category:              p.Category.proto(),
		Amount:                &catalogv1.AmountRange{MinYuan: p.Amount.Min, MaxYuan: p.Amount.Max},
		Regions:               slices.Clone(p.Regions),
		Description:           p.Description,
		Contact:               &catalogv1.Contact{Name: p.Contact.Name, Phone: p.Contact.Phone, Email: p.Contact.Email},
		State:                 p.State.proto(),
		StateReason:           p.StateReason,
		Version:               p.Version,
		CreateTime:            timestamppb.New(p.Created.UTC()),
		UpdateTime:            timestamppb.New(p.Updated.UTC()),
	}
	for _, d := range p.DemandKinds {
		m.DemandKinds = append(m.DemandKinds, d.proto())
	}
	for _, sc := range p.Sectors {
		m.Sectors = append(m.Sectors, sc.proto())
	}
	if !p.Term.IsZero() {
		m.Term = &catalogv1.TermRange{MinMonths: int32(p.Term.Min), MaxMonths: int32(p.Term.Max)}
	}
	switch {
	case !p.Price.Set:
	case p.Price.IsFee:
		m.Price = &catalogv1.Price{Kind: &catalogv1.Price_FeeYuan{FeeYuan: p.Price.FeeYuan}}
	default:
		m.Price = &catalogv1.Price{Kind: &catalogv1.Price_AnnualRate{AnnualRate: &catalogv1.RateRange{MinBps: int32(p.Price.Rate.Min), MaxBps: int32(p.Price.Rate.Max)}}}
	}
	if !p.Collateral.Asset.IsZero() {
		m.Collateral = &catalogv1.Collateral{Asset: p.Collateral.Asset.proto(), PledgeRateBps: p.Collateral.PledgeBps}
	}
	return m
}

// fromProtoTerms reads a request's terms, recording enum numbers the proto
// does not define as violations under prefix.
func fromProtoTerms(prefix string, m *catalogv1.Product, v *errs.Violations) Terms {
	t := Terms{
		NameZh:      m.GetNameZh(),
		NameEn:      m.GetNameEn(),
		Amount:      Range{m.GetAmount().GetMinYuan(), m.GetAmount().GetMaxYuan()},
		Term:        Range{int64(m.GetTerm().GetMinMonths()), int64(m.GetTerm().GetMaxMonths())},
		Regions:     slices.Clone(m.GetRegions()),
		Description: m.GetDescription(),
		Contact:     Contact{Name: m.GetContact().GetName(), Phone: m.GetContact().GetPhone(), Email: m.GetContact().GetEmail()},
	}
	var ok bool
	if t.Category, ok = categoryFromProto(m.GetCategory()); !ok {
		v.Add(prefix+"category", "unknown value %d; one of %s", m.GetCategory(), strings.Join(protoenum.Strings(Categories()), ", "))
	}
	for i, d := range m.GetDemandKinds() {
		dk, ok := demandFromProto(d)
		if !ok || dk.IsZero() {
			v.Add(fmt.Sprintf("%sdemand_kinds[%d]", prefix, i), "unknown value %d; one of %s", d, strings.Join(protoenum.Strings(DemandKinds()), ", "))
			continue
		}
		t.DemandKinds = append(t.DemandKinds, dk)
	}
	for i, sc := range m.GetSectors() {
		sv, ok := sectorFromProto(sc)
		if !ok || sv.IsZero() {
			v.Add(fmt.Sprintf("%ssectors[%d]", prefix, i), "unknown value %d; one of %s", sc, strings.Join(protoenum.Strings(Sectors()), ", "))
			continue
		}
		t.Sectors = append(t.Sectors, sv)
	}
	switch k := m.GetPrice().GetKind().(type) {
	case *catalogv1.Price_AnnualRate:
		t.Price = Price{Set: true, Rate: Range{int64(k.AnnualRate.GetMinBps()), int64(k.AnnualRate.GetMaxBps())}}
	case *catalogv1.Price_FeeYuan:
		t.Price = Price{Set: true, IsFee: true, FeeYuan: k.FeeYuan}
	}
	if c := m.GetCollateral(); c != nil {
		a, ok := assetFromProto(c.GetAsset())
		if !ok {
			v.Add(prefix+"collateral.asset", "unknown value %d; CEA or CCER, or leave collateral unset for none", c.GetAsset())
		}
		t.Collateral = Collateral{Asset: a, PledgeBps: c.GetPledgeRateBps()}
	}
	return t
}

// fromProtoStored reads a stored product. Stored data is ours: an enum
// number we do not know is an error, not a violation.
func fromProtoStored(m *catalogv1.Product) (*Product, error) {
	var v errs.Violations
	t := fromProtoTerms("", m, &v)
	st, ok := stateFromProto(m.GetState())
	if !ok {
		v.Add("state", "unknown value %d", m.GetState())
	}
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("stored product does not decode: %s", err)
	}
	return &Product{
		ID:            m.GetId(),
		InstitutionID: m.GetInstitutionId(),
		OwnerCode:     m.GetInstitutionCreditCode(),
		Terms:         t,
		State:         st,
		StateReason:   m.GetStateReason(),
		Version:       m.GetVersion(),
		Created:       m.GetCreateTime().AsTime(),
		Updated:       m.GetUpdateTime().AsTime(),
	}, nil
}
