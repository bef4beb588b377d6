// Package consumer feeds a service's read model from another service's
// events: a durable JetStream pull consumer with explicit acks, bounded
// redelivery, idempotency by (entity id, version), and a dead-letter stream
// where poison messages are parked for staff (DESIGN §3, §11).
//
// # Idempotency
//
// JetStream delivers at least once, and the outbox may publish an event
// twice outside the duplicate window, so every event may arrive more than
// once and, after a redelivery, out of order. Each envelope carries the
// entity's id, its version after the change and its whole new state, so the
// newest version wins: the consumer keeps, per durable, the last version it
// applied of each entity as a record in the consuming service's OWN store
// (kind SeenKind(durable), id = the entity id). An event whose version is not
// newer than that is acknowledged and skipped without calling the handler.
//
// The seen mark must commit in the same atomic batch as the read-model
// change, or a crash between the two would apply an event twice or skip it.
// So the handler receives the mark as Delivery.Seen and commits it with its
// change, most simply through Delivery.Apply, which appends it. A handler
// that has nothing to write just returns nil; the consumer then commits the
// mark alone. The mark is written with a version check, so two instances
// sharing a durable cannot both apply versions of one entity.
//
// Entity ids must be unique across everything one durable consumes (they are
// ULIDs), and versions start at 1 and grow with every change.
//
// # Failures
//
//   - Handler error: the message is negatively acknowledged and redelivered
//     after a growing delay (Config.RetryDelays).
//   - Last delivery (Config.MaxDeliver) fails too: the message is parked. It
//     is published to carbondesk.deadletter.<durable> on the DEADLETTER
//     stream with its original subject, headers, stream position and the
//     error (headers Header*), then terminated, and logged. Staff read the
//     DEADLETTER stream; a parked message can be re-published to its original
//     subject once the cause is fixed.
//   - A message that cannot be decoded, or lacks an entity id, is parked at
//     once: retrying cannot help.
//   - A handler that hangs past AckWait or a process that dies mid-handling
//     gives no verdict; JetStream redelivers after AckWait. The server-side
//     MaxDeliver is one more than Config.MaxDeliver, so such a message gets
//     one last delivery in which it is parked without running the handler,
//     instead of being silently abandoned by the server.
//   - Transient infrastructure failures (the store unavailable, store.ErrUnavailable
//     or errs.ErrUnavailable from the handler) are not the message's fault:
//     the consumer retries the same message in place with backoff, keeping
//     it from being redelivered (InProgress), and does not count them
//     towards MaxDeliver. Nothing behind it is processed meanwhile, which
//     is what keeps a read model in order.
//   - NATS away, the stream not created yet, the consumer deleted: Run
//     recreates the consumer with backoff, logging once per outage.
//
// Messages are handled one at a time, in stream order.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventv1 "github.com/carbondesk/carbondesk/gen/carbondesk/event/v1"
	"github.com/carbondesk/carbondesk/internal/errs"
	"github.com/carbondesk/carbondesk/internal/events"
	"github.com/carbondesk/carbondesk/internal/store"
)

// Dead-letter stream: one for the whole desk, one subject per durable.
const (
	DeadLetterStream        = "DEADLETTER"
	DeadLetterSubjectPrefix = events.SubjectPrefix + "deadletter."
)

// Headers set on a parked message, beside the original message's own
// headers (those starting with "Nats-" are dropped: they steer the stream).
const (
	HeaderSubject    = "Carbondesk-Dead-Subject"    // the original subject
	HeaderStream     = "Carbondesk-Dead-Stream"     // the stream it came from
	HeaderSequence   = "Carbondesk-Dead-Sequence"   // its sequence in that stream
	HeaderDurable    = "Carbondesk-Dead-Durable"    // the consumer that gave up
	HeaderDeliveries = "Carbondesk-Dead-Deliveries" // how many times it was delivered
	HeaderError      = "Carbondesk-Dead-Error"      // why the last attempt failed
	HeaderMsgID      = "Carbondesk-Dead-Msg-Id"     // the original Nats-Msg-Id (the event id)
	HeaderParkedAt   = "Carbondesk-Dead-Parked-At"  // when it was parked, RFC 3339
)

// DeadLetterSubject is where a durable parks its poison messages.
func DeadLetterSubject(durable string) string { return DeadLetterSubjectPrefix + durable }

// DeadLetterStreamConfig is the DEADLETTER stream: file storage, kept until
// staff delete what they handled.
func DeadLetterStreamConfig(replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "CarbonDesk events a consumer gave up on, parked for staff",
		Subjects:    []string{DeadLetterSubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  events.DuplicateWindow,
		Replicas:    replicas,
	}
}

// SeenKind is the record kind holding a durable's last applied versions:
// "_seen." + durable. Not "_seen:": redisstore keeps ':' out of kinds, and
// durable names cannot hold '.', so the kind still names one durable.
func SeenKind(durable string) string { return "_seen." + durable }

// Seen returns the last version of entityID that durable applied, and false
// when it has applied none.
func Seen(ctx context.Context, st store.Store, durable, entityID string) (int64, bool, error) {
	_, v, ok, err := readSeen(ctx, st, SeenKind(durable), entityID)
	return v, ok, err
}

// Config describes one consumer.
type Config struct {
	// Stream is the stream to read, e.g. events.StreamName("registry").
	// It must exist; Run waits for it.
	Stream string
	// Durable names the consumer; it survives restarts and is shared by
	// every instance of the consuming service. Also names the seen-mark
	// kind and the dead-letter subject.
	Durable string
	// FilterSubjects narrows the stream to these subjects (wildcards
	// allowed); empty means all.
	FilterSubjects []string
	// MaxDeliver is how many times a message is handed to the handler
	// before it is parked. Default 5.
	MaxDeliver int
	// AckWait is how long the server waits for a verdict before
	// redelivering; the handler's context expires at the same time.
	// Default 30 s.
	AckWait time.Duration
	// RetryDelays are the redelivery delays after handler errors: the n-th
	// failed delivery waits RetryDelays[n-1], the last entry repeating.
	// Default 1 s, 5 s, 30 s, 2 min.
	RetryDelays []time.Duration
	// Buffer is how many messages the client pulls ahead. Kept small
	// because AckWait runs from delivery, not from handling. Default 64.
	Buffer int
	// DeadLetterReplicas is the DEADLETTER stream's replica count if Run
	// creates it (1 on one machine, 3 in a cluster). Default 1.
	DeadLetterReplicas int
	// Log receives the consumer's logs. nil: silent.
	Log *slog.Logger
	// OnRedelivery, when set, is called for each message delivered again
	// (NumDelivered > 1), with the consumer's durable name: the process's
	// redelivery metric.
	OnRedelivery func(durable string)
}

func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" || c.Durable == "" {
		return c, errors.New("consumer: Config.Stream and Config.Durable are required")
	}
	if strings.ContainsAny(c.Durable, ".*> \t") {
		return c, fmt.Errorf("consumer: durable name %q may not contain '.', '*', '>' or spaces", c.Durable)
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if len(c.RetryDelays) == 0 {
		c.RetryDelays = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	}
	if c.Buffer <= 0 {
		c.Buffer = 64
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.Log = c.Log.With("component", "consumer", "durable", c.Durable, "stream", c.Stream)
	return c, nil
}

// Delivery is one event handed to a Handler.
type Delivery struct {
	// Event is the decoded envelope.
	Event *eventv1.Envelope
	// Subject is the subject it was published on.
	Subject string
	// Attempt is 1 on the first delivery, up to Config.MaxDeliver.
	Attempt int
	// Seen is the put that records Event's version as applied. Commit it in
	// the same store.Batch as the read-model change (or use Apply).
	Seen store.Put

	st      store.Store
	applied bool
}

// Apply commits b together with the seen mark in the consumer's store, in
// one atomic batch, and returns the versions of b's puts.
func (d *Delivery) Apply(ctx context.Context, b store.Batch) ([]int64, error) {
	b.Puts = append(b.Puts[:len(b.Puts):len(b.Puts)], d.Seen)
	v, err := d.st.Apply(ctx, b)
	if err != nil {
		return nil, err
	}
	d.applied = true
	return v[:len(v)-1], nil
}

// Handler applies one event to the read model. It returns nil once the
// change and d.Seen are committed (or when the event needs no change); an
// error asks for a redelivery. ctx expires with the message's AckWait.
type Handler func(ctx context.Context, d *Delivery) error

// Run consumes until ctx is done, then returns nil. st is the consuming
// service's own store: the one its read model lives in, and where the seen
// marks are kept. It returns an error only for a bad Config.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, st store.Store, h Handler) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	c := &runner{js: js, cfg: cfg, st: st, h: h, log: cfg.Log}

	// The dead-letter stream first: a poison message must have somewhere to
	// go before any message is taken.
	if !c.retry(ctx, "create dead-letter stream", func(ctx context.Context) error {
		_, err := events.EnsureStream(ctx, js, DeadLetterStreamConfig(cfg.DeadLetterReplicas))
		return err
	}) {
		return nil
	}

	cc := consumerConfig(cfg)
	for ctx.Err() == nil {
		var cons jetstream.Consumer
		if !c.retry(ctx, "create consumer", func(ctx context.Context) error {
			var err error
			cons, err = js.CreateOrUpdateConsumer(ctx, cfg.Stream, cc)
			return err
		}) {
			return nil
		}
		err := c.consume(ctx, cons)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("consumer interrupted; recreating it", "error", err)
		if !sleep(ctx, c.cfg.AckWait/10) {
			return nil
		}
	}
	return nil
}

// consumerConfig is the JetStream side of cfg (with defaults applied).
func consumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		Description:    "CarbonDesk read-model consumer " + cfg.Durable,
		FilterSubjects: cfg.FilterSubjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		// One delivery more than the handler gets: see the package doc.
		MaxDeliver: cfg.MaxDeliver + 1,
	}
}

type runner struct {
	js  jetstream.JetStream
	cfg Config
	st  store.Store
	h   Handler
	log *slog.Logger
}

// PullExpiry is how long each pull request of a consumer lives. The server
// sends idle heartbeats at half of it, and the client re-issues its pulls
// after two missed ones: with the client's default of 30 s, a pull lost
// when a NATS node restarts or a stream leader moves left a consumer idle
// for ~30 s; with 5 s it resumes in ~5 s, for one small request per
// consumer every 5 s when idle.
const PullExpiry = 5 * time.Second

// consume handles messages until the iterator fails or ctx is done.
func (c *runner) consume(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.Buffer), jetstream.PullExpiry(PullExpiry))
	if err != nil {
		return fmt.Errorf("consumer: messages: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// NATS unreachable; the iterator resumes on reconnect.
				continue
			}
			return fmt.Errorf("consumer: next: %w", err)
		}
		c.handle(ctx, msg)
	}
}

// handle gives one message its verdict: ack, nak with delay, or park.
func (c *runner) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery at all; nothing to redeliver.
		c.log.Error("message without JetStream metadata; terminating it", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	attempt := int(meta.NumDelivered)
	if attempt > 1 && c.cfg.OnRedelivery != nil {
		c.cfg.OnRedelivery(c.cfg.Durable)
	}
	log := c.log.With("subject", msg.Subject(), "stream_seq", meta.Sequence.Stream, "attempt", attempt)

	env, err := events.Decode(msg.Data())
	if err != nil {
		c.park(ctx, msg, meta, log, fmt.Errorf("consumer: undecodable envelope: %w", err))
		return
	}
	if env.GetEntityId() == "" {
		c.park(ctx, msg, meta, log, errors.New("consumer: envelope has no entity id"))
		return
	}
	log = log.With("event", env.GetId(), "entity", env.GetEntityId(), "version", env.GetEntityVersion())
	if attempt > c.cfg.MaxDeliver {
		c.park(ctx, msg, meta, log, fmt.Errorf("consumer: no verdict after %d deliveries: the handler outran AckWait (%s) or the process died while handling it", c.cfg.MaxDeliver, c.cfg.AckWait))
		return
	}

	kind := SeenKind(c.cfg.Durable)
	var (
		seenRecVersion int64
		seenVersion    int64
		seenOK         bool
	)
	if !c.retryInPlace(ctx, msg, log, "read seen version", func(ctx context.Context) error {
		var err error
		seenRecVersion, seenVersion, seenOK, err = readSeen(ctx, c.st, kind, env.GetEntityId())
		return err
	}) {
		return
	}
	if seenOK && env.GetEntityVersion() <= seenVersion {
		log.Debug("event already applied; skipping", "seen", seenVersion)
		c.ack(msg, log)
		return
	}

	d := &Delivery{
		Event:   env,
		Subject: msg.Subject(),
		Attempt: attempt,
		Seen: store.Put{
			Kind:   kind,
			ID:     env.GetEntityId(),
			Expect: seenRecVersion, // 0 (MustNotExist) when none yet
			Data:   strconv.AppendInt(nil, env.GetEntityVersion(), 10),
		},
		st: c.st,
	}

	var unavailableSince time.Time
	for {
		err := c.call(ctx, d)
		if err == nil {
			if !unavailableSince.IsZero() {
				log.Info("handler succeeded once its dependency was back", "after", time.Since(unavailableSince).Round(time.Millisecond))
			}
			break
		}
		if d.applied {
			// The change and its mark are committed: the event is applied
			// whatever the handler said afterwards.
			log.Warn("handler failed after committing the event; counting it as applied", "error", err)
			break
		}
		if ctx.Err() != nil {
			// Shutting down: hand it back for another instance now.
			_ = msg.Nak()
			return
		}
		if transient(err) {
			if unavailableSince.IsZero() {
				unavailableSince = time.Now()
				log.Error("handler hit an unavailable dependency; retrying in place, later events wait", "error", err)
			}
			if !c.hold(ctx, msg) {
				_ = msg.Nak()
				return
			}
			continue
		}
		if attempt >= c.cfg.MaxDeliver {
			c.park(ctx, msg, meta, log, err)
			return
		}
		delay := c.cfg.RetryDelays[min(attempt, len(c.cfg.RetryDelays))-1]
		log.Warn("handler failed; redelivering later", "error", err, "delay", delay, "max_deliver", c.cfg.MaxDeliver)
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak failed; the server redelivers after AckWait", "error", err)
		}
		return
	}

	if !d.applied {
		// The handler either committed d.Seen in its own batch, or had
		// nothing to write. Read back which, and commit the mark if needed.
		var done bool
		if !c.retryInPlace(ctx, msg, log, "commit seen version", func(ctx context.Context) error {
			_, v, ok, err := readSeen(ctx, c.st, kind, env.GetEntityId())
			if err != nil {
				return err
			}
			if ok && v >= env.GetEntityVersion() {
				done = true
				return nil
			}
			_, err = c.st.Apply(ctx, store.Batch{Puts: []store.Put{d.Seen}})
			if errors.Is(err, store.ErrConflict) {
				return nil // someone else moved the mark; redelivery decides
			}
			done = err == nil
			return err
		}) {
			return
		}
		if !done {
			log.Warn("seen version moved concurrently; redelivering")
			_ = msg.NakWithDelay(c.cfg.RetryDelays[0])
			return
		}
	}
	c.ack(msg, log)
}

// call runs the handler with the message's AckWait as deadline, turning a
// panic into an error so one bad event cannot kill the service.
func (c *runner) call(ctx context.Context, d *Delivery) (err error) {
	hctx, cancel := context.WithTimeout(ctx, c.cfg.AckWait)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("consumer: handler panicked: %v", p)
		}
	}()
	return c.h(hctx, d)
}

func (c *runner) ack(msg jetstream.Msg, log *slog.Logger) {
	// A lost ack only means a redelivery, which the seen mark skips.
	if err := msg.Ack(); err != nil {
		log.Warn("ack failed; the event will be redelivered and skipped", "error", err)
	}
}

// park publishes msg to the dead-letter subject and terminates it. Until the
// dead-letter stream acknowledges, the message is kept (retried in place).
func (c *runner) park(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, log *slog.Logger, cause error) {
	dl := &nats.Msg{Subject: DeadLetterSubject(c.cfg.Durable), Data: msg.Data(), Header: nats.Header{}}
	for k, v := range msg.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(HeaderSubject, msg.Subject())
	dl.Header.Set(HeaderStream, meta.Stream)
	dl.Header.Set(HeaderSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	dl.Header.Set(HeaderDurable, c.cfg.Durable)
	dl.Header.Set(HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	dl.Header.Set(HeaderError, headerValue(cause.Error()))
	dl.Header.Set(HeaderParkedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		dl.Header.Set(HeaderMsgID, id)
	}
	// Stable id: parking the same message again (a crash before Term) is
	// dropped by the dead-letter stream's duplicate window.
	dlID := c.cfg.Durable + ":" + meta.Stream + ":" + strconv.FormatUint(meta.Sequence.Stream, 10)

	if !c.retryInPlace(ctx, msg, log, "park message", func(ctx context.Context) error {
		_, err := c.js.PublishMsg(ctx, dl, jetstream.WithMsgID(dlID), jetstream.WithExpectStream(DeadLetterStream))
		return err
	}) {
		return
	}
	log.Error("event parked on the dead-letter stream; staff must look at it",
		"error", cause, "dead_letter_subject", dl.Subject, "deliveries", meta.NumDelivered)
	if err := msg.TermWithReason("parked on " + dl.Subject); err != nil {
		log.Warn("term failed; the event will be parked again (deduplicated)", "error", err)
	}
}

// retryInPlace runs op until it succeeds, keeping msg from being redelivered
// meanwhile. False when ctx ended first; the message is then handed back.
func (c *runner) retryInPlace(ctx context.Context, msg jetstream.Msg, log *slog.Logger, what string, op func(context.Context) error) bool {
	backoff := 50 * time.Millisecond
	failing := false
	for {
		octx, cancel := context.WithTimeout(ctx, c.cfg.AckWait/2)
		err := op(octx)
		cancel()
		if err == nil {
			if failing {
				log.Info(what + " succeeded after retries")
			}
			return true
		}
		if ctx.Err() != nil {
			_ = msg.Nak()
			return false
		}
		if !failing {
			failing = true
			log.Error(what+" failed; retrying in place", "error", err)
		}
		_ = msg.InProgress()
		if !sleep(ctx, jitter(backoff)) {
			_ = msg.Nak()
			return false
		}
		backoff = min(2*backoff, 5*time.Second, c.cfg.AckWait/2)
	}
}

// hold waits one backoff step while keeping msg from being redelivered.
func (c *runner) hold(ctx context.Context, msg jetstream.Msg) bool {
	_ = msg.InProgress()
	return sleep(ctx, jitter(min(time.Second, c.cfg.AckWait/2)))
}

// retry runs op with capped backoff until it succeeds or ctx is done,
// logging when a failure starts and when it ends.
func (c *runner) retry(ctx context.Context, what string, op func(context.Context) error) bool {
	backoff := 50 * time.Millisecond
	var since time.Time
	for {
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := op(octx)
		cancel()
		if err == nil {
			if !since.IsZero() {
				c.log.Info(what+" succeeded", "after", time.Since(since).Round(time.Millisecond))
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if since.IsZero() {
			since = time.Now()
			attrs := []any{"error", err}
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				attrs = append(attrs, "hint", "the owning service creates its stream when it starts")
			}
			c.log.Error(what+" failed; retrying", attrs...)
		}
		if !sleep(ctx, jitter(backoff)) {
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// transient reports errors that are the infrastructure's fault, not the
// message's: they are retried in place and not counted as deliveries.
func transient(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, errs.ErrUnavailable)
}

// readSeen reads a seen mark: the record's own version (for the next put's
// check), the entity version it holds, and whether it exists.
func readSeen(ctx context.Context, st store.Store, kind, id string) (recVersion, seen int64, ok bool, err error) {
	rec, err := st.Get(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.MustNotExist, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("consumer: read seen %s/%s: %w", kind, id, err)
	}
	v, err := strconv.ParseInt(string(rec.Data), 10, 64)
	if err != nil {
		return 0, 0, false, fmt.Errorf("consumer: seen %s/%s holds %q: %w", kind, id, rec.Data, err)
	}
	return rec.Version, v, true, nil
}

// headerValue keeps an error message fit for one header line.
func headerValue(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 1024 {
		s = s[:1024] + "…"
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/5 + rand.N(2*d/5+1)
}
