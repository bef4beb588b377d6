package benchpg

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbondesk/carbondesk/services/matching"
)

// Tables are the synthetic district loaded into PostgreSQL: two uniquely
// named tables, dropped by Drop.
type Tables struct {
	conn     *pgx.Conn
	products string
	insts    string
	query    string
	w        matching.Weights
}

// zone codes as the engine reads them: 1..4 in the district, 0 elsewhere.
var zoneCodes = map[string]int16{"FINANCE_AXIS": 1, "RIVERSIDE_BELT": 2, "FINANCE_PARK": 3, "OTHER_WUCHANG": 4}

// LoadPostgres creates the tables, COPYs insts institutions and n products
// into them, indexes and analyses them. The price score and the logarithms
// of the amount range are stored generated columns, as the engine
// precomputes them at upsert: both sides get the same head start.
func LoadPostgres(ctx context.Context, conn *pgx.Conn, seed int64, n, insts int, w matching.Weights) (*Tables, error) {
	suffix := fmt.Sprintf("%d_%d", time.Now().UnixNano(), seed)
	t := &Tables{conn: conn, products: "benchmatch_products_" + suffix, insts: "benchmatch_insts_" + suffix, w: w}
	ddl := fmt.Sprintf(`
CREATE TABLE %s (
  id text PRIMARY KEY, active boolean NOT NULL, zone smallint NOT NULL, response double precision NOT NULL);
CREATE TABLE %s (
  id text PRIMARY KEY, institution_id text NOT NULL, category smallint NOT NULL, demand_kinds smallint[] NOT NULL,
  amount_min bigint NOT NULL, amount_max bigint NOT NULL, term_min int NOT NULL, term_max int NOT NULL,
  rate_min_bps int NOT NULL, rate_max_bps int NOT NULL, fee_yuan bigint NOT NULL,
  sectors smallint[] NOT NULL, regions text[] NOT NULL, collateral smallint NOT NULL, pledge_bps int NOT NULL,
  published boolean NOT NULL,
  price_score double precision GENERATED ALWAYS AS (CASE
    WHEN rate_min_bps <> 0 OR rate_max_bps <> 0 THEN
      greatest(0, least(1, 1 - ((rate_min_bps + rate_max_bps)::float8 / 2 - 100) / (1500 - 100)))
    WHEN fee_yuan > 0 THEN
      greatest(0, least(1, 1 - (ln(fee_yuan::float8) - ln(1000::float8)) / (ln(1000000::float8) - ln(1000::float8))))
    ELSE 0.5 END) STORED,
  ln_min double precision GENERATED ALWAYS AS (ln(amount_min::float8)) STORED,
  ln_span double precision GENERATED ALWAYS AS (ln(amount_max::float8) - ln(amount_min::float8)) STORED)`,
		t.insts, t.products)
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return nil, fmt.Errorf("benchpg: create tables: %w", err)
	}

	i := 0
	_, err := conn.CopyFrom(ctx, pgx.Identifier{t.insts}, []string{"id", "active", "zone", "response"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == insts {
				return nil, nil
			}
			in := Institution(seed, i)
			i++
			return []any{in.ID, in.Active, zoneCodes[in.Zone], in.ResponseScore}, nil
		}))
	if err != nil {
		t.Drop(ctx)
		return nil, fmt.Errorf("benchpg: copy institutions: %w", err)
	}
	i = 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{t.products}, []string{"id", "institution_id", "category", "demand_kinds",
		"amount_min", "amount_max", "term_min", "term_max", "rate_min_bps", "rate_max_bps", "fee_yuan",
		"sectors", "regions", "collateral", "pledge_bps", "published"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			p := Product(seed, i, insts)
			i++
			kinds := make([]int16, len(p.DemandKinds))
			for j, k := range p.DemandKinds {
				kinds[j] = int16(k)
			}
			sectors := make([]int16, len(p.Sectors))
			for j, s := range p.Sectors {
				sectors[j] = int16(s)
			}
			regions := p.Regions
			if regions == nil {
				regions = []string{}
			}
			return []any{p.ID, p.InstitutionID, int16(p.Category), kinds, p.AmountMin, p.AmountMax, p.TermMin, p.TermMax,
				p.RateMinBps, p.RateMaxBps, p.FeeYuan, sectors, regions, int16(p.CollateralAsset), p.PledgeRateBps,
				p.Published}, nil
		}))
	if err != nil {
		t.Drop(ctx)
		return nil, fmt.Errorf("benchpg: copy products: %w", err)
	}

	for _, idx := range []string{
		// the kinds a product serves, for @> (GIN over the array)
		fmt.Sprintf(`CREATE INDEX ON %s USING gin (demand_kinds)`, t.products),
		// published products by amount range, for the range test
		fmt.Sprintf(`CREATE INDEX ON %s (amount_min, amount_max) WHERE published`, t.products),
		fmt.Sprintf(`CREATE INDEX ON %s (category, amount_min) WHERE published`, t.products),
		fmt.Sprintf(`ANALYZE %s`, t.insts),
		fmt.Sprintf(`ANALYZE %s`, t.products),
	} {
		if _, err := conn.Exec(ctx, idx); err != nil {
			t.Drop(ctx)
			return nil, fmt.Errorf("benchpg: %s: %w", idx, err)
		}
	}
	t.query = fmt.Sprintf(rankSQL, t.products, t.insts)
	return t, nil
}

// rankSQL is the engine's Rank as one query: every hard constraint in the
// WHERE, the score (the same parts, weights and order of sums) in the ORDER
// BY, ties by id in byte order. Region eligibility is the GB/T 2260 prefix
// rule written as overlap with the demand's own code, its city (xxxx00) and
// its province (xx0000), which is what "a province code covers 42xxxx, a
// city 4201xx" means. Collateral is compared in numeric, exactly.
//
// $1 kind, $2 wanted categories, $3 amount, $4 ln(amount), $5 term,
// $6 sector, $7 region keys, $8 CEA t, $9 CEA price, $10 CCER t,
// $11 CCER price, $12 zone, $13..$16 weights, $17 k.
const rankSQL = `
SELECT p.id, s.score FROM %[1]s p JOIN %[2]s i ON i.id = p.institution_id,
LATERAL (SELECT
    ($13::float8 * p.price_score)
  + ($14::float8 * CASE
      WHEN $5::int <> 0 AND (p.term_min <> 0 OR p.term_max <> 0) THEN
        (CASE WHEN p.ln_span > 0 THEN greatest(0, least(1, 1 - abs(2 * (($4::float8 - p.ln_min) / p.ln_span) - 1))) ELSE 1 END
       + CASE WHEN p.term_max > p.term_min THEN greatest(0, least(1, 1 - abs(2 * (($5::int - p.term_min)::float8 / (p.term_max - p.term_min)) - 1))) ELSE 1 END) / 2
      ELSE
        CASE WHEN p.ln_span > 0 THEN greatest(0, least(1, 1 - abs(2 * (($4::float8 - p.ln_min) / p.ln_span) - 1))) ELSE 1 END
      END)
  + ($15::float8 * i.response)
  + ($16::float8 * CASE WHEN i.zone = 0 OR $12::smallint = 0 THEN 0 WHEN i.zone = $12::smallint THEN 1 ELSE 0.5 END)
  AS score) s
WHERE p.published AND i.active
  AND p.demand_kinds @> ARRAY[$1::smallint]
  AND (cardinality($2::smallint[]) = 0 OR p.category = ANY($2::smallint[]))
  AND p.amount_min <= $3::bigint AND p.amount_max >= $3::bigint
  AND ($5::int = 0 OR (p.term_min = 0 AND p.term_max = 0) OR $5::int BETWEEN p.term_min AND p.term_max)
  AND (cardinality(p.sectors) = 0 OR p.sectors @> ARRAY[$6::smallint])
  AND (cardinality(p.regions) = 0 OR p.regions && $7::text[])
  AND (p.collateral = 0
    OR (p.collateral = 1 AND $9::bigint > 0 AND $8::numeric * $9::bigint * p.pledge_bps >= $3::numeric * 10000)
    OR (p.collateral = 2 AND $11::bigint > 0 AND $10::numeric * $11::bigint * p.pledge_bps >= $3::numeric * 10000))
ORDER BY s.score DESC, p.id COLLATE "C"
LIMIT $17`

func (t *Tables) args(d matching.DemandView, k int) []any {
	cats := make([]int16, len(d.Categories))
	for j, c := range d.Categories {
		cats[j] = int16(c)
	}
	keys := []string{d.Region}
	if len(d.Region) == 6 {
		keys = append(keys, d.Region[:4]+"00", d.Region[:2]+"0000")
	}
	return []any{int16(d.Kind), cats, d.AmountYuan, math.Log(float64(d.AmountYuan)), d.TermMonths, int16(d.Sector), keys,
		d.CEATonnes, ReferencePrices.CEA, d.CCERTonnes, ReferencePrices.CCER, zoneCodes[strings.TrimPrefix(d.Zone, "ZONE_")],
		t.w.Price, t.w.Fit, t.w.Response, t.w.Closeness, k}
}

// Rank runs the ranking query for d and returns the product ids best first.
func (t *Tables) Rank(ctx context.Context, d matching.DemandView, k int) ([]string, error) {
	rows, err := t.conn.Query(ctx, t.query, t.args(d, k)...)
	if err != nil {
		return nil, fmt.Errorf("benchpg: rank: %w", err)
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var id string
		var score float64
		err := r.Scan(&id, &score)
		return id, err
	})
	if err != nil {
		return nil, fmt.Errorf("benchpg: rank: %w", err)
	}
	return ids, nil
}

// Explain returns PostgreSQL's plan for d's query, for the record.
func (t *Tables) Explain(ctx context.Context, d matching.DemandView, k int) (string, error) {
	rows, err := t.conn.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+t.query, t.args(d, k)...)
	if err != nil {
		return "", fmt.Errorf("benchpg: explain: %w", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("benchpg: explain: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// Drop drops the tables.
func (t *Tables) Drop(ctx context.Context) error {
	_, err := t.conn.Exec(ctx, fmt.Sprintf(`DROP TABLE IF EXISTS %s, %s`, t.products, t.insts))
	if err != nil {
		return fmt.Errorf("benchpg: drop tables: %w", err)
	}
	return nil
}
