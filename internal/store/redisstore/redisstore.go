// Package redisstore is the production adapter of the storage port
// (package store) on Redis, through go-redis v9.
//
// Every key of one Store starts with its prefix, which must carry a Redis
// Cluster hash tag (for example "carbondesk:{registry}"), so that all keys of
// one service live in one slot and one Lua script may touch any of them:
//
//	<prefix>:r:<kind>:<id>     hash: v (version), d (data), ix (index terms)
//	<prefix>:ix:<kind>:<term>  sorted set, every score 0, members are ids;
//	                           term "" is the kind's all-records index
//	<prefix>:outbox            stream of pending events (fields id, s, d)
//
// Apply is one Lua script: it checks every version before it writes anything
// (Redis does not roll back a script that fails halfway), then writes the
// records, moves their index memberships and appends the events to the
// outbox stream. Listing walks an index with ZRANGE BYLEX from the cursor, so
// pages stay cheap however deep the cursor is.
//
// Kinds may not contain ':' (it would make two kinds share keys); ids and
// index terms may hold any bytes. Redis 6.2 or later is needed (ZRANGE
// BYLEX).
//
// Failures are translated to the port's sentinels: a missing record is
// store.ErrNotFound, and anything that means Redis did not answer (refused
// connection, timeout, deadline, LOADING, READONLY...) is
// store.ErrUnavailable. Failing fast needs a client built for it: see
// NewClient.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carbondesk/carbondesk/internal/store"
)

// scanBatch is how many ids List reads per round trip when Query.Match may
// reject some, so a selective filter does not cost one round trip per record.
const scanBatch = 256

// Store implements store.Store on one Redis key prefix.
type Store struct {
	rdb      *redis.Client
	prefix   string
	outbox   string
	apply    *redis.Script
	ixPrefix string
}

var _ store.Store = (*Store)(nil)

// New returns a Store keeping its keys under prefix, which should contain a
// hash tag ("carbondesk:{registry}") so the store works on Redis Cluster.
// The client stays the caller's: several stores may share it, and Close does
// not close it. Build it with NewClient, or with the same options, or
// calls will hang while Redis is away instead of failing fast.
func New(client *redis.Client, prefix string) *Store {
	return &Store{
		rdb:      client,
		prefix:   prefix,
		outbox:   prefix + ":outbox",
		apply:    redis.NewScript(applyScript),
		ixPrefix: prefix + ":ix:",
	}
}

// NewClient parses a redis:// (or rediss://) URL and returns a client set up
// to fail fast, as the port promises when Redis is down:
//
//   - ContextTimeoutEnabled, so the request's deadline reaches the socket
//     (without it go-redis waits for its own timeouts: DESIGN §11);
//   - 1 s to dial, 2 s to read or write, 2 s to wait for a pooled connection;
//   - one retry of a failed command and two dial attempts, so an outage
//     answers in well under a second instead of spending the caller's
//     deadline on retries. (Apply is never retried by the client: a retry
//     after a lost reply could commit a batch twice.)
//
// Options the URL sets itself (dial_timeout, read_timeout, max_retries...)
// are kept. Once Redis is back the same client reconnects on its own.
func NewClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: parse redis url: %w", err)
	}
	opt.ContextTimeoutEnabled = true
	setDefault(&opt.DialTimeout, time.Second)
	setDefault(&opt.ReadTimeout, 2*time.Second)
	setDefault(&opt.WriteTimeout, 2*time.Second)
	setDefault(&opt.PoolTimeout, 2*time.Second)
	setDefault(&opt.MaxRetries, 1)
	setDefault(&opt.DialerRetries, 2)
	return redis.NewClient(opt), nil
}

func setDefault[T comparable](field *T, v T) {
	var zero T
	if *field == zero {
		*field = v
	}
}

// Get reads one record.
func (s *Store) Get(ctx context.Context, kind, id string) (store.Record, error) {
	const op = "redisstore: get"
	if err := ctx.Err(); err != nil {
		return store.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKind(kind); err != nil {
		return store.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if id == "" {
		return store.Record{}, fmt.Errorf("%s: %w: empty id", op, store.ErrInvalid)
	}
	vals, err := s.rdb.HMGet(ctx, s.recordKey(kind, id), "v", "d", "ix").Result()
	if err != nil {
		return store.Record{}, fail(op, err)
	}
	rec, ok, err := decodeRecord(kind, id, vals)
	if err != nil {
		return store.Record{}, fmt.Errorf("%s %s/%s: %w", op, kind, id, err)
	}
	if !ok {
		return store.Record{}, fmt.Errorf("%s %s/%s: %w", op, kind, id, store.ErrNotFound)
	}
	return rec, nil
}

// List scans one index in id order. Ids are read from the index sorted set
// in batches and their records fetched in one pipeline per batch; a record
// deleted between the two reads, or no longer holding the term, is skipped,
// so a page never shows what the index no longer says.
func (s *Store) List(ctx context.Context, kind string, q store.Query) (store.Page, error) {
	const op = "redisstore: list"
	if err := ctx.Err(); err != nil {
		return store.Page{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkKind(kind); err != nil {
		return store.Page{}, fmt.Errorf("%s: %w", op, err)
	}
	limit := capLimit(q.Limit)
	key := s.indexKey(kind, q.Index)
	out := make([]store.Record, 0, min(limit, scanBatch))
	cursor := q.After
	for {
		n := limit - len(out) + 1 // one more than needed tells whether more remain
		if q.Match != nil {
			n = max(n, scanBatch)
		}
		ids, err := s.idsAfter(ctx, key, cursor, n)
		if err != nil {
			return store.Page{}, fail(op, err)
		}
		recs, err := s.fetch(ctx, kind, ids)
		if err != nil {
			return store.Page{}, fmt.Errorf("%s: %w", op, err)
		}
		for i, id := range ids {
			if len(out) == limit {
				return store.Page{Records: out, Next: cursor}, nil // ids[i:] remain
			}
			cursor = id
			rec := recs[i]
			if rec.Version == 0 || (q.Index != "" && !slices.Contains(rec.Index, q.Index)) {
				continue // deleted, or moved off the term, since the index was read
			}
			if q.Match != nil && !q.Match(rec) {
				continue
			}
			out = append(out, rec)
		}
		if len(ids) < n {
			return store.Page{Records: out}, nil // the index is exhausted
		}
		if len(out) == limit {
			// The page filled on the batch's last id: look whether any id
			// follows, so Next is empty exactly when nothing is left.
			more, err := s.idsAfter(ctx, key, cursor, 1)
			if err != nil {
				return store.Page{}, fail(op, err)
			}
			if len(more) == 0 {
				cursor = ""
			}
			return store.Page{Records: out, Next: cursor}, nil
		}
	}
}

// idsAfter reads up to n ids of an index that sort after cursor
// (ZRANGE BYLEX: every score is 0, so members sort by their bytes).
func (s *Store) idsAfter(ctx context.Context, key, cursor string, n int) ([]string, error) {
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: start, Stop: "+", ByLex: true, Count: int64(n)}).Result()
}

// fetch reads the records of ids in one pipeline; a missing record comes
// back as a zero Record (Version 0).
func (s *Store) fetch(ctx context.Context, kind string, ids []string) ([]store.Record, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.recordKey(kind, id), "v", "d", "ix")
		}
		return nil
	})
	if err != nil {
		return nil, fail("fetch records", err)
	}
	recs := make([]store.Record, len(ids))
	for i, cmd := range cmds {
		rec, ok, err := decodeRecord(kind, ids[i], cmd.Val())
		if err != nil {
			return nil, fmt.Errorf("record %s/%s: %w", kind, ids[i], err)
		}
		if ok {
			recs[i] = rec
		}
	}
	return recs, nil
}

// Pending reads the oldest entries of the outbox stream. Seq is the stream
// entry id.
func (s *Store) Pending(ctx context.Context, limit int) ([]store.Pending, error) {
	const op = "redisstore: pending"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	msgs, err := s.rdb.XRangeN(ctx, s.outbox, "-", "+", int64(capLimit(limit))).Result()
	if err != nil {
		return nil, fail(op, err)
	}
	return pendingOf(op, msgs)
}

// pendingOf turns outbox stream entries into store.Pending.
func pendingOf(op string, msgs []redis.XMessage) ([]store.Pending, error) {
	out := make([]store.Pending, 0, len(msgs))
	for _, m := range msgs {
		id, _ := m.Values["id"].(string)
		subject, _ := m.Values["s"].(string)
		data, _ := m.Values["d"].(string)
		if id == "" || subject == "" {
			return nil, fmt.Errorf("%s: outbox entry %s lacks an event id or subject", op, m.ID)
		}
		out = append(out, store.Pending{Event: store.Event{ID: id, Subject: subject, Data: []byte(data)}, Seq: m.ID})
	}
	return out, nil
}

// MarkSentThenPending is MarkSent then Pending in one round trip: XDEL and
// XRANGE pipelined, which Redis runs in that order (store.SentMarkReader).
func (s *Store) MarkSentThenPending(ctx context.Context, seqs []string, limit int) ([]store.Pending, error) {
	const op = "redisstore: mark sent, then pending"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for _, seq := range seqs {
		if !isStreamID(seq) {
			return nil, fmt.Errorf("%s: %w: %q is not an outbox seq", op, store.ErrInvalid, seq)
		}
	}
	if len(seqs) == 0 {
		return s.Pending(ctx, limit)
	}
	pipe := s.rdb.Pipeline()
	pipe.XDel(ctx, s.outbox, seqs...)
	rng := pipe.XRangeN(ctx, s.outbox, "-", "+", int64(capLimit(limit)))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fail(op, err)
	}
	return pendingOf(op, rng.Val())
}

// MarkSent deletes entries from the outbox stream (XDEL); ids already gone
// are ignored by Redis.
func (s *Store) MarkSent(ctx context.Context, seqs ...string) error {
	const op = "redisstore: mark sent"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, seq := range seqs {
		if !isStreamID(seq) {
			return fmt.Errorf("%s: %w: %q is not an outbox seq", op, store.ErrInvalid, seq)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	if err := s.rdb.XDel(ctx, s.outbox, seqs...).Err(); err != nil {
		return fail(op, err)
	}
	return nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	const op = "redisstore: ping"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fail(op, err)
	}
	return nil
}

// Close does nothing: the client belongs to whoever built it and may serve
// other stores.
func (s *Store) Close() error { return nil }

func (s *Store) recordKey(kind, id string) string { return s.prefix + ":r:" + kind + ":" + id }

func (s *Store) indexKey(kind, term string) string { return s.ixPrefix + kind + ":" + term }

// fail translates a go-redis error: redis.Nil is ErrNotFound, the caller's
// own cancellation stays what it is, a reply error from a healthy server
// (a bug: WRONGTYPE, a script error) stays an internal error, and
// everything else means Redis did not answer: ErrUnavailable.
func fail(op string, err error) error {
	var reply redis.Error
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", op, err)
	case errors.As(err, &reply) && !transient(err):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}

// transient reports whether a Redis reply error says the server cannot serve
// now but will (loading, failing over, out of memory, a script running).
func transient(err error) bool {
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) ||
		redis.IsMasterDownError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsOOMError(err) ||
		redis.IsMaxClientsError(err) || redis.IsNoReplicasError(err) ||
		redis.HasErrorPrefix(err, "BUSY")
}

func checkKind(kind string) error {
	if kind == "" {
		return fmt.Errorf("%w: empty kind", store.ErrInvalid)
	}
	if strings.Contains(kind, ":") {
		return fmt.Errorf("%w: kind %q contains ':'", store.ErrInvalid, kind)
	}
	return nil
}

func capLimit(n int) int {
	if n <= 0 || n > store.MaxLimit {
		return store.MaxLimit
	}
	return n
}

// decodeRecord builds a Record from HMGET v d ix; ok is false when the
// record does not exist.
func decodeRecord(kind, id string, vals []any) (rec store.Record, ok bool, err error) {
	if len(vals) != 3 || vals[0] == nil {
		return store.Record{}, false, nil
	}
	v, _ := vals[0].(string)
	d, _ := vals[1].(string)
	ix, _ := vals[2].(string)
	version, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return store.Record{}, false, fmt.Errorf("corrupt version %q", v)
	}
	terms, err := decodeTerms(ix)
	if err != nil {
		return store.Record{}, false, err
	}
	return store.Record{Kind: kind, ID: id, Version: version, Data: []byte(d), Index: terms}, true, nil
}

// encodeTerms joins index terms as "<len>:<term>" pieces, so terms may hold
// any byte, the separator included. The Lua script decodes the same form.
func encodeTerms(terms []string) string {
	var b strings.Builder
	for _, t := range terms {
		b.WriteString(strconv.Itoa(len(t)))
		b.WriteByte(':')
		b.WriteString(t)
	}
	return b.String()
}

func decodeTerms(s string) ([]string, error) {
	var terms []string
	for s != "" {
		n, rest, found := strings.Cut(s, ":")
		size, err := strconv.Atoi(n)
		if !found || err != nil || size < 0 || size > len(rest) {
			return nil, fmt.Errorf("corrupt index terms %q", s)
		}
		terms = append(terms, rest[:size])
		s = rest[size:]
	}
	return terms, nil
}

// isStreamID reports whether seq looks like a stream entry id ("<ms>-<n>").
func isStreamID(seq string) bool {
	ms, n, ok := strings.Cut(seq, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(n, 10, 64)
	return err1 == nil && err2 == nil
}
