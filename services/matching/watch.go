package matching

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/carbondesk/carbondesk/gen/carbondesk/catalog/v1"
	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
)

// WatchReadyHeader is sent in WatchMatches' response headers once the
// watch is in place.
const WatchReadyHeader = "x-watch-ready"

// maxWatchFilters bounds each repeated filter of WatchMatches.
const maxWatchFilters = 20

// WatchMatches streams match changes from the MATCHING stream: each watcher
// reads through its own ordered (ephemeral) JetStream consumer, from now or
// from start_time, so watchers never wait on each other. Changes pass the
// request's filters and the caller's access (an institution sees its own
// matches, an enterprise its demands', staff all) into a bounded buffer;
// when a watcher's buffer is full it is cut off with RESOURCE_EXHAUSTED
// instead of holding anything up, and may reconnect from the last
// event_time it received.
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
	js := s.jetStream()
	if js == nil {
		return errs.Unavailable("the live feed is not running yet; retry shortly")
	}
	keep := func(m *matchingv1.Match) bool {
		return seesMatch(ctx, m) &&
			(len(req.GetStates()) == 0 || slices.Contains(req.GetStates(), m.GetState())) &&
			(len(req.GetCategories()) == 0 || slices.Contains(req.GetCategories(), m.GetCategory())) &&
			(len(req.GetSectors()) == 0 || slices.Contains(req.GetSectors(), m.GetSector())) &&
			(req.GetInstitutionId() == "" || m.GetInstitutionId() == req.GetInstitutionId())
	}

	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectMatches}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if !start.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &start
	}
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

	buf := make(chan *matchingv1.WatchMatchesResponse, s.cfg.WatchBuffer)
	var overflow atomic.Bool
	cut := make(chan struct{})
	cc, err := oc.Consume(func(msg jetstream.Msg) {
		if overflow.Load() {
			return
		}
		env, err := events.Decode(msg.Data())
		if err != nil {
			return
		}
		m := &matchingv1.Match{}
		if err := env.GetPayload().UnmarshalTo(m); err != nil || !keep(m) {
			return
		}
		select {
		case buf <- &matchingv1.WatchMatchesResponse{EventId: env.GetId(), EventType: env.GetType(), EventTime: env.GetTime(), Match: m}:
		default:
			if overflow.CompareAndSwap(false, true) {
				close(cut)
			}
		}
	})
	if err != nil {
		return errs.Unavailable("the live feed cannot start a consumer; retry shortly")
	}
	defer cc.Stop()
	// The headers tell the client the watch is in place: a change committed
	// after it arrived is delivered.
	if err := stream.SendHeader(metadata.Pairs(WatchReadyHeader, "1")); err != nil {
		return err
	}

	for {
		// Drain what is buffered before acting on a cut, so the watcher gets
		// everything up to where it fell behind.
		select {
		case r := <-buf:
			if err := stream.Send(r); err != nil {
				return err
			}
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-cut:
			s.log.WarnContext(ctx, "matching: slow watcher cut off", "buffer", s.cfg.WatchBuffer)
			return errs.ResourceExhausted("this watcher fell more than %d changes behind and was cut off so it would not slow the desk down; reconnect with start_time set to the event_time of the last change you received", s.cfg.WatchBuffer)
		case r := <-buf:
			if err := stream.Send(r); err != nil {
				return err
			}
		}
	}
}
