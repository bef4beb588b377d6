// Command benchmatch measures the matching engine against DESIGN §9: it
// indexes a synthetic district of 100,000 products, ranks N demands and
// reports p50/p99/max latency, allocations and resident memory; then it runs
// the same ranking as SQL in PostgreSQL over the same rows, in the same run,
// and prints the ratio. Its tables are uniquely named and dropped at the end.
//
//	go run ./services/matching/internal/benchpg/benchmatch
//	go run ./services/matching/internal/benchpg/benchmatch -n 5000 -pg-n 500 -products 100000
//	go run ./services/matching/internal/benchpg/benchmatch -pg ""   # engine only
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/carbondesk/carbondesk/services/matching"
	"github.com/carbondesk/carbondesk/services/matching/internal/benchpg"
)

type config struct {
	products, insts, n, pgN, k int
	seed                       int64
	pg                         string
	plan                       bool
}

func main() {
	var c config
	flag.IntVar(&c.products, "products", 100_000, "synthetic products to index")
	flag.IntVar(&c.insts, "institutions", 2_000, "synthetic institutions")
	flag.IntVar(&c.n, "n", 5_000, "demands to rank with the engine")
	flag.IntVar(&c.pgN, "pg-n", 300, "demands to rank with PostgreSQL (the first of the same demands)")
	flag.IntVar(&c.k, "k", matching.DefaultTopK, "top k")
	flag.Int64Var(&c.seed, "seed", 1, "seed of the synthetic district")
	flag.StringVar(&c.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", `PostgreSQL URL; "" skips PostgreSQL`)
	flag.BoolVar(&c.plan, "plan", false, "print PostgreSQL's plan for the first demand")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchmatch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	fmt.Fprintf(out, "benchmatch: %d products, %d institutions, %d demands (PostgreSQL %d), k=%d, seed=%d, GOMAXPROCS=%d, %s, load average %s\n",
		c.products, c.insts, c.n, c.pgN, c.k, c.seed, runtime.GOMAXPROCS(0), runtime.Version(), loadavg())
	defer func() { fmt.Fprintf(out, "load average at the end: %s\n", loadavg()) }()

	// Index the district. Products are generated one at a time and handed
	// to the engine, so what stays resident is the engine's, not the
	// generator's.
	baseRSS := rss()
	e := matching.NewEngine(matching.Config{})
	start := time.Now()
	benchpg.Load(e, c.seed, c.products, c.insts)
	build := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory()
	heap := readMetric("/memory/classes/heap/objects:bytes")
	indexedRSS := rss()
	fmt.Fprintf(out, "index: %d products in %v; resident %s (process before indexing %s), live heap %s\n",
		e.ProductsLen(), build.Round(time.Millisecond), mib(indexedRSS), mib(baseRSS), mib(heap))

	demands := make([]matching.DemandView, c.n)
	for i := range demands {
		demands[i] = benchpg.Demand(c.seed, i)
	}

	// The engine: warm up, then one demand at a time. Wall time is the
	// figure; on-CPU time of the ranking thread is beside it because the
	// machine is shared: the gap between the two is time the thread was
	// not running (other processes, GC workers), not ranking work.
	for i := range min(200, len(demands)) {
		e.Rank(demands[i], c.k, nil)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make([]time.Duration, len(demands))
	cpu := make([]time.Duration, len(demands))
	found := 0
	allocs0 := readMetric("/gc/heap/allocs:objects")
	gcs0 := readMetric("/gc/cycles/total:gc-cycles")
	for i, d := range demands {
		c0, t0 := threadCPU(), time.Now()
		cands := e.Rank(d, c.k, nil)
		lat[i], cpu[i] = time.Since(t0), threadCPU()-c0
		if len(cands) > 0 {
			found++
		}
	}
	allocs := float64(readMetric("/gc/heap/allocs:objects")-allocs0) / float64(len(demands))
	gcs := readMetric("/gc/cycles/total:gc-cycles") - gcs0
	el, ec := summarise(lat), summarise(cpu)
	fmt.Fprintf(out, "engine: wall p50 %v  p99 %v  max %v  mean %v\n", el.p50, el.p99, el.max, el.mean)
	fmt.Fprintf(out, "        on-CPU p50 %v  p99 %v  max %v  mean %v\n", ec.p50, ec.p99, ec.max, ec.mean)
	fmt.Fprintf(out, "        %.0f allocs/rank (all in the top-%d reasons); %d GC cycles during the %d ranks; %d/%d demands with a match\n",
		allocs, c.k, gcs, len(demands), found, len(demands))

	if c.pg == "" || c.pgN == 0 {
		return nil
	}
	conn, err := pgx.Connect(ctx, c.pg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return fmt.Errorf("PostgreSQL version: %w", err)
	}
	start = time.Now()
	tables, err := benchpg.LoadPostgres(ctx, conn, c.seed, c.products, c.insts, e.Weights())
	if err != nil {
		return err
	}
	defer func() {
		if err := tables.Drop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "benchmatch:", err)
		}
	}()
	fmt.Fprintf(out, "postgres %s: %d products loaded (COPY, indexes, ANALYZE) in %v\n", version, c.products, time.Since(start).Round(time.Millisecond))
	if c.plan {
		plan, err := tables.Explain(ctx, demands[0], c.k)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, plan)
	}

	// PostgreSQL over the first pgN demands, then the engine over the same
	// demands right after, each in its steady state (warm caches); then
	// both again interleaved, demand by demand, so both meet the same
	// moment of a noisy machine, and the engine meets a cache PostgreSQL
	// has just swept: the conservative ratio.
	pgN := min(c.pgN, len(demands))
	for i := range min(20, pgN) {
		if _, err := tables.Rank(ctx, demands[i], c.k); err != nil {
			return err
		}
	}
	pl := make([]time.Duration, pgN)
	same := 0
	var differ []string
	for i := range pgN {
		t0 := time.Now()
		pgIDs, err := tables.Rank(ctx, demands[i], c.k)
		pl[i] = time.Since(t0)
		if err != nil {
			return err
		}
		if got := ids(e.Rank(demands[i], c.k, nil)); slices.Equal(pgIDs, got) {
			same++
		} else if len(differ) < 5 {
			differ = append(differ, fmt.Sprintf("%s: engine %v, postgres %v", demands[i].ID, got, pgIDs))
		}
	}
	for i := range pgN { // warm the engine's caches again
		e.Rank(demands[i], c.k, nil)
	}
	pe := make([]time.Duration, pgN)
	for i := range pgN {
		t0 := time.Now()
		e.Rank(demands[i], c.k, nil)
		pe[i] = time.Since(t0)
	}
	pli, pei := make([]time.Duration, pgN), make([]time.Duration, pgN)
	for i := range pgN {
		t0 := time.Now()
		e.Rank(demands[i], c.k, nil)
		pei[i] = time.Since(t0)
		t0 = time.Now()
		if _, err := tables.Rank(ctx, demands[i], c.k); err != nil {
			return err
		}
		pli[i] = time.Since(t0)
	}
	ps, es, psi, esi := summarise(pl), summarise(pe), summarise(pli), summarise(pei)
	fmt.Fprintf(out, "same top-%d from both for %d/%d demands\n", c.k, same, pgN)
	for _, d := range differ {
		fmt.Fprintln(out, "  differs:", d)
	}
	fmt.Fprintf(out, "steady state, same %d demands:\n", pgN)
	fmt.Fprintf(out, "  postgres: p50 %v  p99 %v  max %v  mean %v\n", ps.p50, ps.p99, ps.max, ps.mean)
	fmt.Fprintf(out, "  engine:   p50 %v  p99 %v  max %v  mean %v\n", es.p50, es.p99, es.max, es.mean)
	fmt.Fprintf(out, "  ratio postgres/engine: p50 %.0f×  p99 %.0f×  mean %.0f×\n", ratio(ps.p50, es.p50), ratio(ps.p99, es.p99), ratio(ps.mean, es.mean))
	fmt.Fprintf(out, "interleaved, demand by demand:\n")
	fmt.Fprintf(out, "  postgres: p50 %v  p99 %v  max %v  mean %v\n", psi.p50, psi.p99, psi.max, psi.mean)
	fmt.Fprintf(out, "  engine:   p50 %v  p99 %v  max %v  mean %v\n", esi.p50, esi.p99, esi.max, esi.mean)
	fmt.Fprintf(out, "  ratio postgres/engine: p50 %.0f×  p99 %.0f×  mean %.0f×\n", ratio(psi.p50, esi.p50), ratio(psi.p99, esi.p99), ratio(psi.mean, esi.mean))
	return nil
}

func ids(cs []matching.Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ProductID
	}
	return out
}

type stats struct{ p50, p99, max, mean time.Duration }

func summarise(ds []time.Duration) stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return stats{p50: at(0.50), p99: at(0.99), max: s[len(s)-1], mean: sum / time.Duration(len(s))}
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rss is the process's resident set (VmRSS) in bytes, 0 where /proc has none.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
