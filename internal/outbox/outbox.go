// Package outbox publishes the events a service committed to its store's
// transactional outbox to NATS JetStream: the relay half of DESIGN §3.
//
// A service never publishes directly. It writes a change and its events in
// one store.Batch; the Relay reads what is pending, publishes each event with
// the JetStream message id set to the event id, waits for the stream's
// acknowledgement, and only then marks the event sent. So:
//
//   - a crash before the acknowledgement leaves the event pending, and it is
//     published after restart;
//   - a crash between the acknowledgement and MarkSent publishes it again,
//     and the stream's duplicate window (events.DuplicateWindow) drops the
//     copy;
//   - while NATS is away, writes still succeed; the backlog grows in the
//     store and drains, in order, when NATS returns.
//
// Events reach the stream strictly in outbox order. A batch is pipelined:
// up to Options.Batch publishes are in flight at once, and every one after
// the first carries the JetStream header Nats-Expected-Last-Msg-Id naming its
// predecessor. The stream refuses event n+1 unless event n is the last it
// stored (a re-published copy of an event it already holds is acknowledged as
// a duplicate first, so restarts and several relays sharing one outbox still
// agree). So a failed event n can never be overtaken: n+1 and everything
// after it fail too, only the acknowledged prefix is marked sent, and the
// next attempt starts again at n. A failure is retried with capped
// exponential backoff and is never dropped, even when it looks permanent (no
// stream takes its subject): the relay then logs loudly and keeps trying,
// because dropping would break "no change without its event".
//
// When the next round is due at once (a full read, or a write committed
// since the read) and the store can mark and read in one call
// (store.SentMarkReader), a round's events are marked sent by the next
// round's read, in the same round trip: one Redis round trip per round
// instead of two. Nothing changes for a crash: events published and not yet
// marked are published again and dropped as duplicates, as above.
//
// A read of at least Options.AtomicMin events of one unreplicated stream goes
// out as one JetStream atomic batch instead (atomic.go): stored whole or not
// at all, and with sync always fsynced once rather than once per event.
//
// Throughput: pipelining hides the acknowledgement round trip, so the relay
// is bound by the server's store (one fsync per message with sync always,
// see package natsx) rather than by one round trip per event; atomic batches
// lift that bound for a backlog. Figures are in docs/BENCHMARKS.md
// (BenchmarkRelay).
//
// What is not here: creating streams (events.EnsureStream, at start-up) and
// consuming (package consumer).
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/carbondesk/carbondesk/internal/store"
)

// Options tune a Relay. Zero values take the defaults.
type Options struct {
	// Batch is how many pending events one store read returns. Default 256.
	Batch int
	// PollInterval is how often the relay looks for pending events when
	// nobody calls Notify (another process wrote, or a Notify was missed).
	// Default 250 ms.
	PollInterval time.Duration
	// AckTimeout bounds one publish: how long to wait for the stream's
	// acknowledgement before counting the attempt as failed. Default 5 s.
	AckTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed attempts; the
	// wait doubles from Min to Max. Defaults 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// StuckLogInterval is how often a failure that lasts is logged again, so
	// a stuck outbox never goes quiet. Default 1 minute.
	StuckLogInterval time.Duration
	// AfterPublish, when set, is called after the stream acknowledged an
	// event and before it is marked sent. For tests that crash the process
	// in that gap; production leaves it nil.
	AfterPublish func(store.Pending)
	// Replicated says the stream has replicas (R3 in a cluster). A
	// pipelined event then names its predecessor by stream sequence
	// (Nats-Expected-Last-Sequence), not by message id: nats-server checks
	// Nats-Expected-Last-Msg-Id on a replicated stream only as each replica
	// applies the message, and a mismatch there is a "critical write error"
	// that takes the replica out of the stream until its server restarts
	// (every replica at once when the expectation no longer holds, e.g.
	// after a leader change; a replica caught up from a snapshot even when
	// it does); the expected sequence is checked by the leader before it
	// proposes the message, and refused cleanly. The first event of a batch
	// is published alone, to learn the sequence the next ones expect.
	Replicated bool
	// AtomicMin: a read that finds at least this many pending events of
	// one stream publishes them as one JetStream atomic batch (nats-server
	// 2.12 or later, a stream with AllowAtomicPublish, not Replicated)
	// instead of pipelining them. Zero or negative: never (the default).
	//
	// It pays only on a server that fsyncs every message (sync always):
	// the batch is fsynced once instead of once per event, which is what
	// lets the relay keep up with a burst of writes. An atomic batch has a
	// fixed cost of a few milliseconds (the server stages it on disk), so
	// on a server that does not fsync each message pipelining is faster at
	// any size; AtomicMinSyncAlways is the threshold for a sync-always one.
	AtomicMin int
}

// AtomicMinSyncAlways is the Options.AtomicMin for a server with sync
// always (the embedded one): below ~16 events, pipelined publishes with an
// fsync each take less time than one atomic batch (docs/BENCHMARKS.md).
const AtomicMinSyncAlways = 16

func (o Options) withDefaults() Options {
	if o.Batch <= 0 {
		o.Batch = 256
	}
	o.Batch = min(o.Batch, store.MaxLimit) // adapters return no more
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.StuckLogInterval <= 0 {
		o.StuckLogInterval = time.Minute
	}
	return o
}

// Relay publishes a store's outbox to JetStream. Run it once per store; Flush
// and Notify may be called from any goroutine.
type Relay struct {
	st store.Store
	js jetstream.JetStream
	// ajs publishes asynchronously over js's connection; its own context so
	// an unanswered publish times out (AckTimeout) instead of waiting forever.
	ajs  jetstream.JetStream
	log  *slog.Logger
	opts Options

	wake chan struct{}
	// mu serialises publishing, so Flush and Run never interleave their
	// batches and break the order.
	mu sync.Mutex

	published atomic.Uint64
	// atomicBatches counts the batches published atomically.
	atomicBatches atomic.Uint64

	// marker is st's store.SentMarkReader, or nil. With it, a round whose
	// successor is due at once (more is waiting) leaves its events to be
	// marked sent by the next round's read, in the same round trip;
	// unmarked holds them meanwhile (touched only under mu).
	marker   store.SentMarkReader
	unmarked []string

	// noAtomic is set once the stream or server refused atomic batches
	// (an older server, or a stream without AllowAtomicPublish): the relay
	// pipelines from then on.
	noAtomic atomic.Bool

	// Failure state, touched only by the goroutine holding mu.
	failing      bool
	failingSince time.Time
	failures     int
	lastLogged   time.Time
}

// New returns a relay over st publishing through js. log may be nil.
func New(st store.Store, js jetstream.JetStream, log *slog.Logger, opts Options) *Relay {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	r := &Relay{
		st:   st,
		js:   js,
		ajs:  js,
		log:  log.With("component", "outbox"),
		opts: opts,
		wake: make(chan struct{}, 1),
	}
	r.marker, _ = st.(store.SentMarkReader)
	if nc := js.Conn(); nc != nil {
		ajs, err := jetstream.New(nc,
			jetstream.WithPublishAsyncTimeout(opts.AckTimeout),
			jetstream.WithPublishAsyncMaxPending(2*opts.Batch))
		if err == nil {
			r.ajs = ajs
		}
	}
	return r
}

// Notify wakes the relay now instead of at its next poll. It never blocks;
// the Notifying store decorator calls it after every committed batch with
// events.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Published is how many events this relay has had acknowledged by the stream
// (duplicates the stream dropped included).
func (r *Relay) Published() uint64 { return r.published.Load() }

// Run publishes pending events until ctx is done, then returns nil. Failures
// never end it: they are logged and retried.
func (r *Relay) Run(ctx context.Context) error {
	defer r.markDeferred()
	backoff := r.opts.MinBackoff
	for {
		n, err := r.publishBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			// Notify must not cut a backoff short: during an outage every
			// write would otherwise trigger a doomed attempt. A reconnect
			// does: the backlog should drain the moment NATS is back.
			wait := jitter(backoff)
			backoff = min(2*backoff, r.opts.MaxBackoff)
			if !r.sleep(ctx, wait, nil, errors.Is(err, errDisconnected)) {
				return nil
			}
		case n == r.opts.Batch:
			backoff = r.opts.MinBackoff // a full batch: more is probably waiting
		default:
			backoff = r.opts.MinBackoff
			if !r.sleep(ctx, r.opts.PollInterval, r.wake, false) {
				return nil
			}
		}
	}
}

// sleep waits for d, a wake-up on woken, or (with untilConnected) the NATS
// connection coming back; false when ctx ended first.
func (r *Relay) sleep(ctx context.Context, d time.Duration, woken <-chan struct{}, untilConnected bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var poll <-chan time.Time
	nc := r.js.Conn()
	if untilConnected && nc != nil {
		// A cheap local check; a status listener would outlive the wait.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		poll = tick.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-woken:
			return true
		case <-t.C:
			return true
		case <-poll:
			if nc.IsConnected() {
				return true
			}
		}
	}
}

// Flush publishes everything pending, retrying failures with backoff, until
// the outbox is empty or ctx is done. Call it on shutdown, after the servers
// stopped taking writes and before NATS is closed, with a bounded ctx.
func (r *Relay) Flush(ctx context.Context) error {
	defer r.markDeferred()
	backoff := r.opts.MinBackoff
	for {
		n, err := r.publishBatch(ctx)
		if err == nil && n == 0 {
			return nil
		}
		if err == nil {
			backoff = r.opts.MinBackoff
			continue
		}
		if ctx.Err() != nil || !r.sleep(ctx, jitter(backoff), nil, errors.Is(err, errDisconnected)) {
			return fmt.Errorf("outbox: flush: %w (last failure: %w)", ctx.Err(), err)
		}
		backoff = min(2*backoff, r.opts.MaxBackoff)
	}
}

// errDisconnected is the failure reported while the NATS connection is down;
// nothing is sent then, so the reconnect buffer does not fill with copies.
var errDisconnected = errors.New("NATS connection is not connected")

// publishBatch reads one batch of pending events, publishes them in order
// until the first failure, and marks the acknowledged ones sent. It returns
// how many were acknowledged and the failure that stopped it, if any.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	pending, err := r.read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		err = fmt.Errorf("outbox: read pending: %w", err)
		r.noteFailure(err, nil, 0)
		return 0, err
	}
	if len(pending) == 0 {
		r.noteSuccess()
		return 0, nil
	}

	var (
		sent     []string
		failedAt int
		pubErr   error
	)
	if r.atomicFits(pending) {
		sent, pubErr = r.publishAtomic(ctx, pending)
		if pubErr != nil && r.pipelineInstead(pubErr) && ctx.Err() == nil {
			sent, failedAt, pubErr = r.publishPipelined(ctx, pending)
		}
	} else {
		sent, failedAt, pubErr = r.publishPipelined(ctx, pending)
	}
	var failed *store.Pending
	if pubErr != nil {
		failed = &pending[failedAt]
	}

	if len(sent) > 0 {
		r.published.Add(uint64(len(sent)))
		if pubErr == nil && r.marker != nil && (len(pending) == r.opts.Batch || len(r.wake) > 0) {
			// The next round starts at once (a full read, or a commit
			// since this one's read): its read marks these sent.
			r.unmarked = append(r.unmarked, sent...)
		} else if err := r.markSent(ctx, sent); err != nil {
			// Not lost: they stay pending and are published again; the
			// duplicate window drops the copies.
			err = fmt.Errorf("outbox: mark %d events sent: %w", len(sent), err)
			r.noteFailure(err, nil, len(pending))
			return len(sent), err
		}
	}
	if pubErr != nil {
		if ctx.Err() != nil {
			return len(sent), ctx.Err()
		}
		r.noteFailure(pubErr, failed, len(pending)-len(sent))
		return len(sent), pubErr
	}
	r.noteSuccess()
	return len(sent), nil
}

// read returns the next round's pending events, marking the previous
// round's deferred events sent first, in the same round trip.
func (r *Relay) read(ctx context.Context) ([]store.Pending, error) {
	if len(r.unmarked) == 0 {
		return r.st.Pending(ctx, r.opts.Batch)
	}
	pending, err := r.marker.MarkSentThenPending(ctx, r.unmarked, r.opts.Batch)
	if err != nil {
		// They stay deferred: the next read marks them. If the relay
		// stops first, they are published again after restart, and the
		// duplicate window drops the copies.
		return nil, err
	}
	r.unmarked = r.unmarked[:0]
	return pending, nil
}

// markDeferred marks the deferred events sent, when Run or Flush ends.
func (r *Relay) markDeferred() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.unmarked) == 0 {
		return
	}
	if err := r.markSent(context.Background(), r.unmarked); err != nil {
		r.log.Warn("could not mark published events sent; they will be published again and dropped as duplicates by the stream", "events", len(r.unmarked), "error", err)
		return
	}
	r.unmarked = r.unmarked[:0]
}

// markSent marks seqs sent, within AckTimeout. The stream holds these
// events: it records that even if ctx was cancelled meanwhile (shutdown),
// or they would be published again needlessly after restart.
func (r *Relay) markSent(ctx context.Context, seqs []string) error {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.AckTimeout)
	defer cancel()
	return r.st.MarkSent(mctx, seqs...)
}

// publishPipelined publishes pending in order with up to all of them in
// flight, each after the first expecting its predecessor as the stream's
// last message id, and waits for the acknowledgements in order. It returns
// the seqs of the acknowledged prefix; on a failure, the index of the first
// event not acknowledged and why.
func (r *Relay) publishPipelined(ctx context.Context, pending []store.Pending) (sent []string, failedAt int, err error) {
	// On a replicated stream the events from `from` on expect the stream
	// sequences after `last`, learnt from one publish awaited alone.
	from, last := 0, uint64(0)
	if r.opts.Replicated {
		if sent, from, last, err = r.anchor(ctx, pending); err != nil {
			return sent, from, err
		}
		if from == len(pending) {
			return sent, -1, nil
		}
	}
	futures := make([]jetstream.PubAckFuture, 0, len(pending)-from)
	var issueErr error
	for i := from; i < len(pending); i++ {
		p := &pending[i]
		if nc := r.js.Conn(); nc != nil && !nc.IsConnected() {
			issueErr = fmt.Errorf("outbox: publish %s: %w (status %s)", p.ID, errDisconnected, nc.Status())
			break
		}
		msg := &nats.Msg{Subject: p.Subject, Data: p.Data, Header: nats.Header{}}
		// The message id is the event id: a re-publish of the same event
		// inside the duplicate window is acknowledged but not stored twice.
		// No retries inside the client: our own backoff handles "no
		// responders".
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(p.ID), jetstream.WithRetryAttempts(0)}
		switch {
		case r.opts.Replicated:
			opts = append(opts, jetstream.WithExpectLastSequence(last+uint64(i-from)))
		case i > 0 && sameStream(pending[i-1].Subject, p.Subject):
			opts = append(opts, jetstream.WithExpectLastMsgID(pending[i-1].ID))
		}
		f, err := r.ajs.PublishMsgAsync(msg, opts...)
		if err != nil {
			issueErr = fmt.Errorf("outbox: publish %s to %s: %w", p.ID, p.Subject, err)
			break
		}
		futures = append(futures, f)
	}

	if sent == nil {
		sent = make([]string, 0, len(futures))
	}
	timeout := time.NewTimer(r.opts.AckTimeout)
	defer timeout.Stop()
	for k, f := range futures {
		i := from + k
		p := &pending[i]
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				r.log.Debug("stream already held event", "event", p.ID, "subject", p.Subject, "stream", ack.Stream, "seq", ack.Sequence)
			}
		case err := <-f.Err():
			return sent, i, fmt.Errorf("outbox: publish %s to %s: %w", p.ID, p.Subject, err)
		case <-timeout.C:
			return sent, i, fmt.Errorf("outbox: publish %s to %s: %w", p.ID, p.Subject, context.DeadlineExceeded)
		case <-ctx.Done():
			return sent, i, fmt.Errorf("outbox: publish %s to %s: %w", p.ID, p.Subject, ctx.Err())
		}
		sent = append(sent, p.Seq)
		if r.opts.AfterPublish != nil {
			r.opts.AfterPublish(*p)
		}
	}
	if issueErr != nil {
		return sent, from + len(futures), issueErr
	}
	return sent, -1, nil
}

// anchor publishes pending in order, each awaited alone and without an
// expectation, until the stream stores one rather than acknowledging a copy
// it already held: that one's sequence is the stream's last, for the events
// after it to expect (Options.Replicated). It returns the seqs of the
// acknowledged events, the index of the next, and that sequence; on a
// failure, the index of the event that failed.
func (r *Relay) anchor(ctx context.Context, pending []store.Pending) (sent []string, next int, last uint64, err error) {
	sent = make([]string, 0, len(pending))
	for i := range pending {
		p := &pending[i]
		if nc := r.js.Conn(); nc != nil && !nc.IsConnected() {
			return sent, i, 0, fmt.Errorf("outbox: publish %s: %w (status %s)", p.ID, errDisconnected, nc.Status())
		}
		msg := &nats.Msg{Subject: p.Subject, Data: p.Data, Header: nats.Header{}}
		pctx, cancel := context.WithTimeout(ctx, r.opts.AckTimeout)
		ack, err := r.js.PublishMsg(pctx, msg, jetstream.WithMsgID(p.ID), jetstream.WithRetryAttempts(0))
		cancel()
		if err != nil {
			return sent, i, 0, fmt.Errorf("outbox: publish %s to %s: %w", p.ID, p.Subject, err)
		}
		sent = append(sent, p.Seq)
		if r.opts.AfterPublish != nil {
			r.opts.AfterPublish(*p)
		}
		if !ack.Duplicate {
			return sent, i + 1, ack.Sequence, nil
		}
		r.log.Debug("stream already held event", "event", p.ID, "subject", p.Subject, "stream", ack.Stream, "seq", ack.Sequence)
	}
	return sent, len(pending), 0, nil
}

// sameStream reports whether two event subjects belong to one stream: one
// stream per service takes carbondesk.<service>.> (events.StreamConfig), so
// the first two subject tokens name it. An outbox holds one service's
// events, so in practice this is always true; the check keeps a mixed
// outbox from expecting a predecessor its stream never sees.
func sameStream(a, b string) bool {
	return streamPrefix(a) == streamPrefix(b)
}

func streamPrefix(subject string) string {
	first := strings.IndexByte(subject, '.')
	if first < 0 {
		return subject
	}
	second := strings.IndexByte(subject[first+1:], '.')
	if second < 0 {
		return subject
	}
	return subject[:first+1+second]
}

// noteFailure logs a failure once when it starts, then again every
// StuckLogInterval while it lasts, never once per retry.
func (r *Relay) noteFailure(err error, p *store.Pending, backlog int) {
	now := time.Now()
	r.failures++
	attrs := []any{"error", err, "failures", r.failures}
	if p != nil {
		attrs = append(attrs, "event", p.ID, "subject", p.Subject)
		if t, ok := eventTime(p.ID); ok {
			attrs = append(attrs, "event_age", now.Sub(t).Round(time.Millisecond))
		}
	}
	if backlog > 0 {
		attrs = append(attrs, "backlog_at_least", backlog)
	}
	if hint := hintFor(err); hint != "" {
		attrs = append(attrs, "hint", hint)
	}
	switch {
	case !r.failing:
		r.failing, r.failingSince, r.lastLogged = true, now, now
		r.log.Error("outbox relay cannot publish; events stay pending and are retried", attrs...)
	case now.Sub(r.lastLogged) >= r.opts.StuckLogInterval:
		r.lastLogged = now
		attrs = append(attrs, "since", r.failingSince.Format(time.RFC3339), "for", now.Sub(r.failingSince).Round(time.Second))
		r.log.Error("outbox relay still cannot publish", attrs...)
	default:
		r.log.Debug("outbox publish attempt failed", attrs...)
	}
}

func (r *Relay) noteSuccess() {
	if !r.failing {
		return
	}
	r.log.Info("outbox relay publishing again", "outage", time.Since(r.failingSince).Round(time.Millisecond), "failed_attempts", r.failures)
	r.failing, r.failures = false, 0
}

// hintFor tells an operator what a failure probably means.
func hintFor(err error) string {
	switch {
	case errors.Is(err, errDisconnected), errors.Is(err, nats.ErrConnectionClosed):
		return "NATS is unreachable; writes continue and the backlog drains when it returns"
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return "no JetStream stream answered for this subject: its stream is missing (create it: events.EnsureStream) or has no leader for a moment (a NATS node restarting); the event is kept and retried"
	case errors.Is(err, context.DeadlineExceeded):
		return "JetStream did not acknowledge in time (overloaded, electing a leader, or disk stalled)"
	case isWrongLastMsgID(err), isWrongLastSequence(err):
		return "the stream did not hold this event's predecessor last: an earlier event failed or another publisher wrote to the stream; the relay retries from the first unacknowledged event"
	case errors.Is(err, store.ErrUnavailable):
		return "the store is unreachable"
	}
	return ""
}

// jsWrongLastMsgID is JetStream's error code for a refused
// Nats-Expected-Last-Msg-Id.
const jsWrongLastMsgID = 10070

// isWrongLastSequence: a refused Nats-Expected-Last-Sequence
// (Options.Replicated), JetStream's error code 10071.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func isWrongLastMsgID(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsWrongLastMsgID
}

// Backlog describes the events waiting in an outbox.
type Backlog struct {
	// Count is the number of pending events, counted up to the limit asked.
	Count int
	// More is true when Count reached the limit: there may be more.
	More bool
	// Oldest is when the oldest pending event was created (from its ULID);
	// zero when the outbox is empty.
	Oldest time.Time
}

// Backlog reads how many events wait (up to limit, at most store.MaxLimit)
// and how old the oldest is: the figures to alert on when NATS is away.
func (r *Relay) Backlog(ctx context.Context, limit int) (Backlog, error) {
	if limit <= 0 || limit > store.MaxLimit {
		limit = store.MaxLimit
	}
	pending, err := r.st.Pending(ctx, limit)
	if err != nil {
		return Backlog{}, fmt.Errorf("outbox: backlog: %w", err)
	}
	b := Backlog{Count: len(pending), More: len(pending) == limit}
	if len(pending) > 0 {
		b.Oldest, _ = eventTime(pending[0].ID)
	}
	return b, nil
}

// eventTime is the creation time encoded in an event id (a ULID).
func eventTime(id string) (time.Time, bool) {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}

// jitter spreads d by ±20 % so relays of several processes do not retry in
// lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/5 + rand.N(2*d/5+1)
}

// Notifying wraps st so that every successful Apply carrying events wakes
// the relay at once; services write through the wrapped store.
func Notifying(st store.Store, r *Relay) store.Store {
	return &notifying{Store: st, relay: r}
}

type notifying struct {
	store.Store
	relay *Relay
}

func (n *notifying) Apply(ctx context.Context, b store.Batch) ([]int64, error) {
	v, err := n.Store.Apply(ctx, b)
	if err == nil && len(b.Events) > 0 {
		n.relay.Notify()
	}
	return v, err
}
