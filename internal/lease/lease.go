// Package lease lets replicas of a service take turns at work that must run
// in one place at a time (an outbox relay, a deadline sweep), on the event
// backbone every replica already shares: a NATS JetStream KeyValue bucket.
// So it works whatever store the service uses.
//
// A lease is one key, "<service>.<task>", holding the id of its holder. It
// is taken with Create (only when the key is absent) and kept by Update with
// the revision the holder last wrote, every TTL/3; a failed renewal loses it
// at once. The bucket's MaxAge is the TTL, so a holder that dies without
// releasing stops renewing and its key expires: another replica takes over
// within about one TTL. A holder that stops cleanly deletes its key (guarded
// by its revision), and another takes over at its next attempt.
//
// A lease is not a fence: for a moment after a lost renewal the old holder
// may still finish a step. The work run under it must stay correct if that
// happens (the relay's ordered, de-duplicated publishes; sweeps that are
// idempotent updates by closure); the lease only keeps replicas from doing
// the same work twice as a rule.
//
// What is not here: choosing what runs under a lease (internal/app).
package lease

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the KeyValue bucket leases live in.
const DefaultBucket = "carbondesk_leases"

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 15 * time.Second

// Options tune a Manager. Zero values take the defaults.
type Options struct {
	// Bucket is the KeyValue bucket's name. Default DefaultBucket.
	Bucket string
	// TTL is the bucket's MaxAge: how long a silent holder keeps a lease.
	// Renewals happen every TTL/3. Default DefaultTTL.
	TTL time.Duration
	// Replicas of the bucket's stream: 1 on one node, 3 in a cluster.
	Replicas int
	// Holder names this process in the keys; default a random id.
	Holder string
}

// Manager takes and keeps leases for one process.
type Manager struct {
	kv     jetstream.KeyValue
	ttl    time.Duration
	holder string
	log    *slog.Logger
}

// New creates (or updates) the lease bucket and returns a manager over it.
func New(ctx context.Context, js jetstream.JetStream, log *slog.Logger, o Options) (*Manager, error) {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Holder == "" {
		o.Holder = rand.Text()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "CarbonDesk leases: which replica runs a service's single-runner tasks",
		TTL:         o.TTL,
		History:     1,
		Replicas:    o.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("lease: bucket %s: %w", o.Bucket, err)
	}
	return &Manager{kv: kv, ttl: o.TTL, holder: o.Holder, log: log.With("component", "lease", "holder", o.Holder)}, nil
}

// Holder is this process's id in the lease keys.
func (m *Manager) Holder() string { return m.holder }

// Run runs fn each time this process holds the lease named key, with a
// context cancelled when the lease is lost or ctx ends, and stands by while
// another process holds it. It returns nil when ctx ends; an error of fn,
// other than its context's, ends Run with it. held, when not nil, tracks
// whether the lease is held.
func (m *Manager) Run(ctx context.Context, key string, held *atomic.Bool, fn func(context.Context) error) error {
	log := m.log.With("lease", key)
	period := m.ttl / 3
	for {
		rev, err := m.acquire(ctx, key)
		if err != nil && ctx.Err() == nil {
			log.Debug("lease not taken", "err", err)
		}
		if err == nil {
			log.Info("lease taken")
			if held != nil {
				held.Store(true)
			}
			err = m.hold(ctx, log, key, rev, period, fn)
			if held != nil {
				held.Store(false)
			}
			if err != nil {
				return err
			}
		}
		if !sleep(ctx, period) {
			return nil
		}
	}
}

// Do runs fn once, while this process holds the lease named key: it waits
// for the lease, runs fn, releases the lease and returns fn's error. If the
// lease is lost while fn runs, fn's context is cancelled and fn runs again
// once the lease is retaken, so fn must be safe to repeat (a one-time
// set-up that checks whether it was done).
func (m *Manager) Do(ctx context.Context, key string, fn func(context.Context) error) error {
	log := m.log.With("lease", key)
	period := m.ttl / 3
	for {
		rev, err := m.acquire(ctx, key)
		if err == nil {
			var finished bool
			var fnErr error
			err = m.hold(ctx, log, key, rev, period, func(ctx context.Context) error {
				fnErr = fn(ctx)
				finished = ctx.Err() == nil || fnErr == nil
				return fnErr
			})
			if finished {
				return fnErr
			}
			if err != nil {
				return err
			}
		}
		if !sleep(ctx, period) {
			return ctx.Err()
		}
	}
}

// acquire takes key if it is free (or still ours, from a renewal that
// failed but did land) and returns its revision.
func (m *Manager) acquire(ctx context.Context, key string) (uint64, error) {
	actx, cancel := context.WithTimeout(ctx, m.ttl/3)
	defer cancel()
	e, err := m.kv.Get(actx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return m.kv.Create(actx, key, []byte(m.holder))
	case err != nil:
		return 0, err
	case string(e.Value()) == m.holder:
		return m.kv.Update(actx, key, []byte(m.holder), e.Revision())
	}
	return 0, fmt.Errorf("held by %s", e.Value())
}

// hold runs fn while renewing the lease every period; it returns fn's
// error (not its context's), or nil when the lease was lost or ctx ended.
func (m *Manager) hold(ctx context.Context, log *slog.Logger, key string, rev uint64, period time.Duration, fn func(context.Context) error) error {
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fn(wctx) }()
	tick := time.NewTicker(period)
	defer tick.Stop()
	finish := func() error {
		stop()
		err := <-done
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	}
	for {
		select {
		case err := <-done:
			stop()
			m.release(key, rev)
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			if ctx.Err() == nil {
				log.Info("lease released: its task ended")
			}
			return nil
		case <-ctx.Done():
			err := finish()
			m.release(key, rev)
			return err
		case <-tick.C:
			rctx, cancel := context.WithTimeout(ctx, period)
			next, err := m.kv.Update(rctx, key, []byte(m.holder), rev)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					continue // the ctx.Done case releases
				}
				log.Warn("lease lost: renewal failed; standing by", "err", err)
				return finish()
			}
			rev = next
		}
	}
}

// release deletes key if it still carries our last revision, so another
// process takes over without waiting for the TTL.
func (m *Manager) release(key string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), m.ttl/3)
	defer cancel()
	_ = m.kv.Delete(ctx, key, jetstream.LastRevision(rev))
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
