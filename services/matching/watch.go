package matching

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
)

// WatchReadyHeader is sent in WatchMatches' response headers once the
// watch is in place.
const WatchReadyHeader = "x-watch-ready"

// maxWatchFilters bounds each repeated filter of WatchMatches.
const maxWatchFilters = 20

// WatchMatches streams match changes from the MATCHING stream. Watchers
// from now share one ordered consumer per process (hub.go), so a change is
// read and decoded once however many watch; a watcher from start_time reads
// through its own ordered (ephemeral) consumer. Watchers never wait on each
// other. Changes pass the
// request's filters and the caller's access (an institution sees its own
// matches, an enterprise its demands', staff all) into a bounded buffer.
// A watcher that stops keeping up (see Policy.WatchBuffer and WatchGrace)
// is cut off with RESOURCE_EXHAUSTED instead of holding anything up, and
// may reconnect from the last event_time it received.
func (s *Server) WatchMatches(req *matchingv1.WatchMatchesRequest, stream grpc.ServerStreamingServer[matchingv1.WatchMatchesResponse]) error {
	ctx := stream.Context()
	var v errs.Violations
	for i, st := range req.GetStates() {
		if _, ok := matchingv1.MatchState_name[int32(st)]; !ok || st == 0 {
			v.Add("states", "entry %d: unknown state %d", i, st)
		}
	}
	for i, c := range req.GetCategories() {
		if _, ok := catalogv1.ProductCategory_name[int32(c)]; !ok || c == 0 {
			v.Add("categories", "entry %d: unknown category %d", i, c)
		}
	}
	for i, sc := range req.GetSectors() {
		if _, ok := catalogv1.Sector_name[int32(sc)]; !ok || sc == 0 {
			v.Add("sectors", "entry %d: unknown sector %d", i, sc)
		}
	}
	if len(req.GetStates()) > maxWatchFilters || len(req.GetCategories()) > maxWatchFilters || len(req.GetSectors()) > maxWatchFilters {
		v.Add("states", "each filter lists at most %d values", maxWatchFilters)
	}
	var start time.Time
	if st := req.GetStartTime(); st != nil {
		start = st.AsTime()
		if start.After(s.now().Add(time.Minute)) {
			v.Add("start_time", "%s is in the future; leave it unset to watch from now", start.UTC().Format(time.RFC3339))
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	keep := func(m *matchingv1.Match) bool {
		return seesMatch(ctx, m) &&
			(len(req.GetStates()) == 0 || slices.Contains(req.GetStates(), m.GetState())) &&
			(len(req.GetCategories()) == 0 || slices.Contains(req.GetCategories(), m.GetCategory())) &&
			(len(req.GetSectors()) == 0 || slices.Contains(req.GetSectors(), m.GetSector())) &&
			(req.GetInstitutionId() == "" || m.GetInstitutionId() == req.GetInstitutionId())
	}
	// The headers tell the client the watch is in place: a change committed
	// after it arrived is delivered.
	ready := func() error { return stream.SendHeader(metadata.Pairs(WatchReadyHeader, "1")) }
	if start.IsZero() {
		// SendMsg, not Send: the hub hands over changes already encoded
		// (grpcx.Encoded), which the server's codec sends as they are.
		return s.watchLive(ctx, keep, stream.SendMsg, ready)
	}
	js := s.jetStream()
	if js == nil {
		return errs.Unavailable("the live feed is not running yet; retry shortly")
	}

	// A watcher from a point in the past reads through its own ordered
	// consumer from start_time.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectMatches},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := js.Stream(cctx, events.StreamName(Name))
	if err != nil {
		return errs.Unavailable("the live feed cannot reach the MATCHING stream; retry shortly")
	}
	oc, err := st.OrderedConsumer(cctx, cfg)
	if err != nil {
		return errs.Unavailable("the live feed cannot start a consumer; retry shortly")
	}

	it, err := oc.Messages(jetstream.PullMaxMessages(min(max(s.cfg.WatchBuffer, 16), 512)), jetstream.PullExpiry(consumer.PullExpiry))
	if err != nil {
		return errs.Unavailable("the live feed cannot start a consumer; retry shortly")
	}
	defer it.Stop()
	go func() {
		<-cctx.Done()
		it.Stop()
	}()

	// A reader pulls from the stream into a bounded buffer; this goroutine
	// sends from it. A burst (a confirm closing several matches, a relay
	// catching up) only fills the buffer for a moment. A watcher is cut off
	// when it stops keeping up: its buffer stays full for WatchGrace (it
	// does not read), or it stays more than WatchBuffer changes behind the
	// stream without catching up for WatchGrace (it reads slower than the
	// desk changes). Its consumer is pull-based, so until then it holds up
	// nobody: the stream keeps what it has not read.
	buf := make(chan *matchingv1.WatchMatchesResponse, s.cfg.WatchBuffer)
	cut := make(chan string, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(buf)
		var behindSince time.Time
		var behindAt uint64
		for {
			msg, err := it.Next()
			if err != nil {
				if cctx.Err() == nil {
					readErr <- err
				}
				return
			}
			if meta, err := msg.Metadata(); err == nil {
				lag, now := meta.NumPending+uint64(len(buf)), time.Now()
				switch {
				case lag <= uint64(s.cfg.WatchBuffer):
					behindSince = time.Time{}
				case behindSince.IsZero() || lag < behindAt:
					behindSince, behindAt = now, lag // fell behind, or is catching up
				case now.Sub(behindSince) > s.cfg.WatchGrace:
					cut <- fmt.Sprintf("this watcher stayed more than %d changes behind for %s", s.cfg.WatchBuffer, s.cfg.WatchGrace)
					return
				}
			}
			env, err := events.Decode(msg.Data())
			if err != nil {
				continue
			}
			m := &matchingv1.Match{}
			if err := env.GetPayload().UnmarshalTo(m); err != nil || !keep(m) {
				continue
			}
			r := &matchingv1.WatchMatchesResponse{EventId: env.GetId(), EventType: env.GetType(), EventTime: env.GetTime(), Match: m}
			select {
			case buf <- r:
				continue
			default:
			}
			t := time.NewTimer(s.cfg.WatchGrace)
			select {
			case buf <- r:
				t.Stop()
			case <-t.C:
				cut <- fmt.Sprintf("this watcher did not read its last %d changes for %s", s.cfg.WatchBuffer, s.cfg.WatchGrace)
				return
			case <-cctx.Done():
				t.Stop()
				return
			}
		}
	}()
	if err := ready(); err != nil {
		return err
	}

	for {
		// Drain what is buffered before acting on a cut, so the watcher gets
		// everything up to where it fell behind.
		select {
		case r, ok := <-buf:
			if !ok {
				return s.watchEnded(ctx, cut, readErr)
			}
			if err := stream.Send(r); err != nil {
				return err
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-buf:
			if !ok {
				return s.watchEnded(ctx, cut, readErr)
			}
			if err := stream.Send(r); err != nil {
				return err
			}
		}
	}
}

// watchEnded is WatchMatches' answer once its reader stopped: cut off, the
// stream lost, or the call over.
func (s *Server) watchEnded(ctx context.Context, cut <-chan string, readErr <-chan error) error {
	select {
	case why := <-cut:
		s.log.WarnContext(ctx, "matching: slow watcher cut off", "why", why)
		return watchCutOff(why)
	case err := <-readErr:
		s.log.WarnContext(ctx, "matching: live feed interrupted", "error", err)
		return errs.Unavailable("the live feed was interrupted; reconnect with start_time set to the event_time of the last change you received")
	default:
		return nil
	}
}
