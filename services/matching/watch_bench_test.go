package matching

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/auth"
	"github.com/carbondesk/carbondesk/internal/grpcx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// BenchmarkWatchers measures the live feed's fan-out (DESIGN §9: 1,000
// concurrent watchers, each event to all within p99 ≤ 50 ms): 1,000 staff
// WatchMatches streams over 10 connections to a matching server on the
// Redis store and an embedded JetStream; b.N demands are posted at 5/s
// (5 match.proposed events each); every watcher must receive every event.
// Latency is from the event's time (set when the change commits) to its
// arrival at the watcher, so it covers the outbox relay, the stream and the
// fan-out.
//
// The server and all 1,000 clients share the machine's two cores, so the
// clients' own decoding of every change (1,000 × ~1.5 KB per change) is
// paid for by the server's cores too. Two variants tell the parts apart:
// decode=full, where each watcher unmarshals every change as a client
// library would, and decode=time, where each watcher receives the same
// bytes but reads only the event time (what a watcher on another machine
// costs this one).
//
//	go test -run '^$' -bench Watchers -benchtime 100x ./services/matching/
func BenchmarkWatchers(b *testing.B) {
	b.Run("decode=full", func(b *testing.B) { benchWatchers(b, true) })
	b.Run("decode=time", func(b *testing.B) { benchWatchers(b, false) })
}

func benchWatchers(b *testing.B, decode bool) {
	const watchers, conns, rate = 1000, 10, 5
	log := slog.New(slog.DiscardHandler)
	ns := testenv.NATS(b)
	js := testenv.JetStream(b, ns)
	// A plain subscriber notes when each change reached the stream (the
	// relay's publish acknowledged), to split the latency into the durable
	// publish and the fan-out.
	var (
		pubMu     sync.Mutex
		published = map[string]time.Time{}
	)
	nc, err := ns.Connect()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if _, err := nc.Subscribe(SubjectMatches, func(m *nats.Msg) {
		now := time.Now()
		pubMu.Lock()
		published[m.Header.Get(nats.MsgIdHdr)] = now
		pubMu.Unlock()
	}); err != nil {
		b.Fatal(err)
	}
	testenv.Stream(b, js, Name)
	catalogHistory(b, js, 12)
	st := testenv.RedisStore(b)
	relay := outbox.New(st, js, log, outbox.Options{})
	testenv.Background(b, "relay", relay.Run)
	s := New(outbox.Notifying(st, relay), NewEngine(Config{}), WithLogger(log))
	testenv.Background(b, "matching", func(ctx context.Context) error { return s.Run(ctx, js) })
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := s.WaitCaughtUp(wctx); err != nil {
		b.Fatal(err)
	}

	srv := grpcx.New(log, grpcx.Options{Unary: []grpc.UnaryServerInterceptor{testUnary}, Stream: []grpc.StreamServerInterceptor{testStream}})
	s.Register(srv.Server)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(func() { srv.Stop(5 * time.Second) })
	var clients []matchingv1.MatchingServiceClient
	for range conns {
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		clients = append(clients, matchingv1.NewMatchingServiceClient(cc))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	staff := callAs(ctx, auth.Staff, "")
	want := 5 * b.N
	var (
		mu      sync.Mutex
		lats    = make([]time.Duration, 0, watchers*want)
		arrived = make([]arrival, 0, watchers*want)
		done    sync.WaitGroup
		errs    = make(chan error, watchers)
	)
	for i := range watchers {
		var opts []grpc.CallOption
		if !decode {
			opts = append(opts, grpc.ForceCodecV2(grpcx.FrameCodec{}))
		}
		w, err := clients[i%conns].WatchMatches(staff, &matchingv1.WatchMatchesRequest{}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Header(); err != nil {
			b.Fatal(err)
		}
		done.Add(1)
		go func() {
			defer done.Done()
			mine := make([]time.Duration, 0, want)
			arrivals := make([]arrival, 0, want)
			for len(mine) < want {
				var (
					at time.Time
					id string
				)
				if decode {
					r, err := w.Recv()
					if err != nil {
						errs <- err
						return
					}
					at, id = r.GetEventTime().AsTime(), r.GetEventId()
				} else {
					var f grpcx.Frame
					if err := w.RecvMsg(&f); err != nil {
						errs <- err
						return
					}
					if at, id, err = eventTime(f); err != nil {
						errs <- err
						return
					}
				}
				now := time.Now()
				mine = append(mine, now.Sub(at))
				arrivals = append(arrivals, arrival{id, now})
			}
			mu.Lock()
			lats = append(lats, mine...)
			arrived = append(arrived, arrivals...)
			mu.Unlock()
		}()
	}

	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for range b.N {
		<-tick.C
		code := testCode(b)
		resp, err := clients[0].PostDemand(callAs(ctx, auth.Enterprise, code), &matchingv1.PostDemandRequest{Demand: liveDemand(code)})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(resp.GetMatches()); n != 5 {
			b.Fatalf("%d matches, want 5", n)
		}
	}
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case err := <-errs:
		b.Fatalf("a watcher ended: %v", err)
	case <-time.After(60 * time.Second):
		b.Fatal("watchers did not get every event within a minute")
	}
	b.StopTimer()
	slices.Sort(lats)
	q := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lats[len(lats)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(len(lats)), "deliveries")

	// The fan-out alone: from the change's arrival on the stream to its
	// arrival at each watcher.
	pubMu.Lock()
	fan := make([]time.Duration, 0, len(arrived))
	for _, a := range arrived {
		if p, ok := published[a.id]; ok {
			fan = append(fan, a.at.Sub(p))
		}
	}
	pubMu.Unlock()
	if len(fan) < len(arrived)/2 {
		b.Fatalf("the subscriber saw %d of %d deliveries' changes", len(fan), len(arrived))
	}
	slices.Sort(fan)
	b.ReportMetric(float64(fan[len(fan)/2])/float64(time.Millisecond), "fanout-p50-ms")
	b.ReportMetric(float64(fan[int(0.99*float64(len(fan)-1))])/float64(time.Millisecond), "fanout-p99-ms")
}

// arrival is one change's arrival at one watcher.
type arrival struct {
	id string
	at time.Time
}

// eventTime reads WatchMatchesResponse.event_id (field 1) and event_time
// (field 3) from a frame.
func eventTime(f grpcx.Frame) (time.Time, string, error) {
	var (
		at time.Time
		id string
	)
	b := []byte(f)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return at, id, protowire.ParseError(n)
		}
		b = b[n:]
		if (num == 1 || num == 3) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return at, id, protowire.ParseError(n)
			}
			b = b[n:]
			if num == 1 {
				id = string(v)
				continue
			}
			ts := &timestamppb.Timestamp{}
			if err := proto.Unmarshal(v, ts); err != nil {
				return at, id, err
			}
			at = ts.AsTime()
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return at, id, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if at.IsZero() || id == "" {
		return at, id, errors.New("no event_id or event_time in the change")
	}
	return at, id, nil
}
