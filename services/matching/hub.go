package matching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	matchingv1 "github.com/carbondesk/carbondesk/gen/carbondesk/matching/v1"
	"github.com/carbondesk/carbondesk/internal/consumer"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/grpcx"
)

// errHubNotRunning: Run has not given the server its JetStream yet.
var errHubNotRunning = errors.New("matching: the live feed is not running yet")

// watchCutOff is the status of a watcher cut off for falling behind.
func watchCutOff(why string) error {
	return errs.ResourceExhausted("%s and was cut off so it would not slow the desk down; reconnect with start_time set to the event_time of the last change you received", why)
}

// watchHub fans the MATCHING stream's match changes out to every live
// watcher (WatchMatches without start_time) of this process through ONE
// ordered consumer: each change is read and decoded once, whatever the
// number of watchers, where a consumer per watcher made the server deliver
// each change once per watcher. It starts with the first live watcher and
// stops when the last leaves or its consumer fails (the watchers then end
// with UNAVAILABLE and reconnect).
//
// The hub never waits for a watcher: it queues each change for each
// watcher, and a watcher more than Policy.WatchBuffer changes behind for
// longer than Policy.WatchGrace (or 16 buffers behind at all) is cut off
// with RESOURCE_EXHAUSTED after the changes queued up to the cut.
type watchHub struct {
	s *Server

	mu      sync.Mutex
	subs    map[*hubSub]struct{}
	running bool
	ready   chan struct{} // closed once the consumer is in place (or failed)
	err     error         // why the running consumer could not start
	stop    context.CancelFunc
}

// hubSub is one live watcher: a queue the hub appends to and the
// watcher's own goroutine drains.
type hubSub struct {
	keep func(*matchingv1.Match) bool

	mu      sync.Mutex
	pending []*grpcx.Encoded
	behind  time.Time     // since when pending holds more than the buffer
	notify  chan struct{} // a change was queued (cap 1)
	// end is closed when the hub drops the watcher: it fell behind
	// (overflow) or the feed failed.
	end      chan struct{}
	overflow string
}

// offer queues r (a *matchingv1.WatchMatchesResponse encoded once for
// every watcher); false when the watcher has been more than buffer changes
// behind for longer than grace (or 16 buffers behind at all): it is cut.
func (sub *hubSub) offer(r *grpcx.Encoded, buffer int, grace time.Duration, now time.Time) bool {
	sub.mu.Lock()
	sub.pending = append(sub.pending, r)
	n := len(sub.pending)
	switch {
	case n <= buffer:
		sub.behind = time.Time{}
	case n > 16*buffer:
		sub.overflow = fmt.Sprintf("this watcher fell more than %d changes behind", 16*buffer)
	case sub.behind.IsZero():
		sub.behind = now
	case now.Sub(sub.behind) > grace:
		sub.overflow = fmt.Sprintf("this watcher stayed more than %d changes behind for %s", buffer, grace)
	}
	cut := sub.overflow != ""
	sub.mu.Unlock()
	select {
	case sub.notify <- struct{}{}:
	default:
	}
	return !cut
}

// take returns what is queued and empties the queue.
func (sub *hubSub) take() []*grpcx.Encoded {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	out := sub.pending
	sub.pending, sub.behind = nil, time.Time{}
	return out
}

// stale reports whether the watcher has been more than buffer changes
// behind for longer than grace, marking it cut.
func (sub *hubSub) stale(buffer int, grace time.Duration, now time.Time) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.pending) > buffer && !sub.behind.IsZero() && now.Sub(sub.behind) > grace {
		sub.overflow = fmt.Sprintf("this watcher stayed more than %d changes behind for %s", buffer, grace)
	}
	return sub.overflow != ""
}

func newWatchHub(s *Server) *watchHub {
	return &watchHub{s: s, subs: map[*hubSub]struct{}{}}
}

// subscribe adds a live watcher and returns once the hub's consumer is in
// place, so every change committed after subscribe returns reaches it.
func (h *watchHub) subscribe(ctx context.Context, keep func(*matchingv1.Match) bool) (*hubSub, error) {
	sub := &hubSub{keep: keep, notify: make(chan struct{}, 1), end: make(chan struct{})}
	h.mu.Lock()
	if !h.running {
		js := h.s.jetStream()
		if js == nil {
			h.mu.Unlock()
			return nil, errHubNotRunning
		}
		hctx, cancel := context.WithCancel(context.Background())
		h.running, h.ready, h.err, h.stop = true, make(chan struct{}), nil, cancel
		go h.run(hctx, js, h.ready)
	}
	h.subs[sub] = struct{}{}
	ready := h.ready
	h.mu.Unlock()

	select {
	case <-ready:
	case <-ctx.Done():
		h.unsubscribe(sub)
		return nil, ctx.Err()
	}
	h.mu.Lock()
	err := h.err
	h.mu.Unlock()
	if err != nil {
		h.unsubscribe(sub)
		return nil, err
	}
	return sub, nil
}

// unsubscribe removes a watcher; the last one out stops the consumer.
func (h *watchHub) unsubscribe(sub *hubSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; !ok {
		return
	}
	delete(h.subs, sub)
	if len(h.subs) == 0 && h.running {
		h.stop()
		h.running = false
	}
}

// run reads the stream from now and fans out until ctx ends or the
// consumer fails; then every watcher still there is ended as failed.
func (h *watchHub) run(ctx context.Context, js jetstream.JetStream, ready chan struct{}) {
	err := h.consume(ctx, js, ready)
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-ready:
	default:
		h.err = err
		close(ready)
	}
	if h.ready != ready || !h.running {
		return // stopped (nobody left) or already replaced by a new start
	}
	for sub := range h.subs {
		close(sub.end)
		delete(h.subs, sub)
	}
	h.running = false
	h.stop()
	h.s.log.Warn("matching: live feed hub stopped; watchers reconnect", "error", err)
}

func (h *watchHub) consume(ctx context.Context, js jetstream.JetStream, ready chan struct{}) error {
	st, err := js.Stream(ctx, events.StreamName(Name))
	if err != nil {
		return err
	}
	oc, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectMatches}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(512), jetstream.PullExpiry(consumer.PullExpiry))
	if err != nil {
		return err
	}
	defer it.Stop()
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	// A watcher that stops reading while the desk is quiet is found by
	// this sweep rather than by the next change.
	go func() {
		t := time.NewTicker(max(h.s.cfg.WatchGrace/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				h.sweep(now)
			}
		}
	}()
	close(ready)
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		env, err := events.Decode(msg.Data())
		if err != nil {
			continue
		}
		m := &matchingv1.Match{}
		if err := env.GetPayload().UnmarshalTo(m); err != nil {
			continue
		}
		// Marshalled here once, not once per watcher: with a thousand
		// watchers that was most of the server's work per change.
		r, err := grpcx.Encode(&matchingv1.WatchMatchesResponse{EventId: env.GetId(), EventType: env.GetType(), EventTime: env.GetTime(), Match: m})
		if err != nil {
			continue
		}
		h.fanOut(m, r)
	}
}

// fanOut offers one change to every watcher that keeps it; a watcher that
// stopped keeping up is dropped. Watchers share r: they only read it.
func (h *watchHub) fanOut(m *matchingv1.Match, r *grpcx.Encoded) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if !sub.keep(m) {
			continue
		}
		if !sub.offer(r, h.s.cfg.WatchBuffer, h.s.cfg.WatchGrace, now) {
			close(sub.end)
			delete(h.subs, sub)
		}
	}
	if len(h.subs) == 0 && h.running {
		h.stop()
		h.running = false
	}
}

// sweep cuts off the watchers that stayed behind too long.
func (h *watchHub) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if sub.stale(h.s.cfg.WatchBuffer, h.s.cfg.WatchGrace, now) {
			close(sub.end)
			delete(h.subs, sub)
		}
	}
	if len(h.subs) == 0 && h.running {
		h.stop()
		h.running = false
	}
}

// watchLive serves a live watcher from the hub.
func (s *Server) watchLive(ctx context.Context, keep func(*matchingv1.Match) bool, send func(any) error, ready func() error) error {
	sub, err := s.hub.subscribe(ctx, keep)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errHubNotRunning) {
			return errs.Unavailable("the live feed is not running yet; retry shortly")
		}
		return errs.Unavailable("the live feed cannot reach the MATCHING stream; retry shortly")
	}
	defer s.hub.unsubscribe(sub)
	if err := ready(); err != nil {
		return err
	}
	sendAll := func() error {
		for _, r := range sub.take() {
			if err := send(r); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case <-sub.notify:
			if err := sendAll(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		case <-sub.end:
			sub.mu.Lock()
			why := sub.overflow
			sub.mu.Unlock()
			if why == "" {
				// The feed failed: send what was queued, then say so.
				if err := sendAll(); err != nil {
					return err
				}
				return errs.Unavailable("the live feed was interrupted; reconnect with start_time set to the event_time of the last change you received")
			}
			// Cut off: what was queued up to the cut is sent first.
			if err := sendAll(); err != nil {
				return err
			}
			s.log.WarnContext(ctx, "matching: slow watcher cut off", "why", why)
			return watchCutOff(why)
		}
	}
}
