// Package boltstore is the embedded adapter of the storage port (package
// store): one bbolt file per service in the single binary's data folder.
//
// Layout inside the file:
//
//	records/<kind>/<id>         version, index terms and data (see encodeRecord)
//	index/<kind>/<term>/<id>    empty value; one bucket per non-empty term
//	outbox/<8-byte big-endian sequence>   one pending event (see encodeEvent)
//
// The kind's records bucket is itself the all-records index (term ""):
// bbolt keeps keys in byte order, the order List promises.
//
// Each Apply is one bbolt read-write transaction: bbolt rolls it back
// whole on any error and fsyncs before Commit returns, so an acknowledged
// write survives a crash and a failed one leaves nothing. Writes are
// serialised by bbolt (one writer at a time); reads run in parallel.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/carbondesk/carbondesk/internal/store"
)

// lockTimeout bounds the wait for bbolt's file lock: a second process on
// the same file fails with a clear error instead of hanging.
const lockTimeout = time.Second

var (
	bucketRecords = []byte("records")
	bucketIndex   = []byte("index")
	bucketOutbox  = []byte("outbox")
)

// Store implements store.Store on one bbolt file.
type Store struct {
	db   *bolt.DB
	path string
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed, with its folder) the bbolt file at path.
// Only one process may hold the file: a second Open fails after one second
// with an error that says so.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: open %s: the file is locked by another process (is another carbondesk running on this data folder?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketRecords, bucketIndex, bucketOutbox} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: open %s: create buckets: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Get reads one record.
func (s *Store) Get(ctx context.Context, kind, id string) (store.Record, error) {
	const op = "boltstore: get"
	if err := ctx.Err(); err != nil {
		return store.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	if kind == "" || id == "" {
		return store.Record{}, fmt.Errorf("%s: %w: empty kind or id", op, store.ErrInvalid)
	}
	var rec store.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := recordBucket(tx, kind)
		if b == nil {
			return store.ErrNotFound
		}
		v := b.Get([]byte(id))
		if v == nil {
			return store.ErrNotFound
		}
		var err error
		rec, err = decodeRecord(kind, id, v)
		return err
	})
	if err != nil {
		return store.Record{}, fail(fmt.Sprintf("%s %s/%s", op, kind, id), err)
	}
	return rec, nil
}

// List scans one index in id order inside one read transaction, so a page
// is a consistent snapshot.
func (s *Store) List(ctx context.Context, kind string, q store.Query) (store.Page, error) {
	const op = "boltstore: list"
	if err := ctx.Err(); err != nil {
		return store.Page{}, fmt.Errorf("%s: %w", op, err)
	}
	if kind == "" {
		return store.Page{}, fmt.Errorf("%s: %w: empty kind", op, store.ErrInvalid)
	}
	limit := store.MaxLimit
	if q.Limit > 0 && q.Limit < limit {
		limit = q.Limit
	}
	var page store.Page
	err := s.db.View(func(tx *bolt.Tx) error {
		records := recordBucket(tx, kind)
		scan := records
		if q.Index != "" {
			scan = indexBucket(tx, kind, q.Index)
		}
		if records == nil || scan == nil {
			return nil
		}
		c := scan.Cursor()
		k, _ := c.First()
		if q.After != "" {
			k, _ = c.Seek([]byte(q.After))
			if k != nil && string(k) == q.After {
				k, _ = c.Next()
			}
		}
		for ; k != nil; k, _ = c.Next() {
			if len(page.Records) == limit {
				page.Next = page.Records[limit-1].ID
				return nil
			}
			v := records.Get(k)
			if v == nil {
				return &corruptError{what: fmt.Sprintf("index %q of %s: it lists %q, which has no record", q.Index, kind, k)}
			}
			rec, err := decodeRecord(kind, string(k), v)
			if err != nil {
				return err
			}
			if q.Match != nil && !q.Match(rec) {
				continue
			}
			page.Records = append(page.Records, rec)
		}
		return nil
	})
	if err != nil {
		return store.Page{}, fail(op, err)
	}
	return page, nil
}

// Apply commits the batch in one read-write transaction: every version is
// checked before anything is written, and any error rolls the whole
// transaction back.
func (s *Store) Apply(ctx context.Context, b store.Batch) ([]int64, error) {
	const op = "boltstore: apply"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	versions := make([]int64, len(b.Puts))
	err := s.db.Update(func(tx *bolt.Tx) error {
		current := make([]store.Record, len(b.Puts))
		for i, p := range b.Puts {
			if rb := recordBucket(tx, p.Kind); rb != nil {
				if v := rb.Get([]byte(p.ID)); v != nil {
					rec, err := decodeRecord(p.Kind, p.ID, v)
					if err != nil {
						return err
					}
					current[i] = rec
				}
			}
			if p.Expect != store.AnyVersion && p.Expect != current[i].Version {
				return &store.ConflictError{Kind: p.Kind, ID: p.ID, Expect: p.Expect, Current: current[i].Version}
			}
		}
		for i, p := range b.Puts {
			v, err := put(tx, p, current[i])
			if err != nil {
				return fmt.Errorf("%s/%s: %w", p.Kind, p.ID, err)
			}
			versions[i] = v
		}
		if len(b.Events) == 0 {
			return nil
		}
		ob := tx.Bucket(bucketOutbox)
		for _, e := range b.Events {
			seq, err := ob.NextSequence()
			if err != nil {
				return err
			}
			if err := ob.Put(binary.BigEndian.AppendUint64(nil, seq), encodeEvent(e)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return versions, nil
}

// put writes (or deletes) one record whose current state is cur (Version 0:
// absent) and moves its index entries; it returns the new version.
func put(tx *bolt.Tx, p store.Put, cur store.Record) (int64, error) {
	id := []byte(p.ID)
	if p.Delete {
		if cur.Version == 0 {
			return 0, nil
		}
		for _, t := range cur.Index {
			if err := unindex(tx, p.Kind, t, id); err != nil {
				return 0, err
			}
		}
		return 0, recordBucket(tx, p.Kind).Delete(id)
	}
	terms := store.NormalizeIndex(p.Index)
	for _, t := range cur.Index {
		if _, keep := slices.BinarySearch(terms, t); !keep {
			if err := unindex(tx, p.Kind, t, id); err != nil {
				return 0, err
			}
		}
	}
	for _, t := range terms {
		if _, had := slices.BinarySearch(cur.Index, t); had {
			continue
		}
		ib, err := createBuckets(tx, bucketIndex, []byte(p.Kind), []byte(t))
		if err != nil {
			return 0, err
		}
		if err := ib.Put(id, nil); err != nil {
			return 0, err
		}
	}
	rb, err := createBuckets(tx, bucketRecords, []byte(p.Kind))
	if err != nil {
		return 0, err
	}
	version := cur.Version + 1
	return version, rb.Put(id, encodeRecord(version, terms, p.Data))
}

// unindex removes id from a term's bucket, and the bucket once empty, so
// terms that come and go (owners, dates) do not leave buckets behind.
func unindex(tx *bolt.Tx, kind, term string, id []byte) error {
	kb := tx.Bucket(bucketIndex).Bucket([]byte(kind))
	if kb == nil {
		return nil
	}
	tb := kb.Bucket([]byte(term))
	if tb == nil {
		return nil
	}
	if err := tb.Delete(id); err != nil {
		return err
	}
	if k, _ := tb.Cursor().First(); k == nil {
		return kb.DeleteBucket([]byte(term))
	}
	return nil
}

// Pending reads the oldest outbox entries. Seq is the entry's sequence
// number in decimal.
func (s *Store) Pending(ctx context.Context, limit int) ([]store.Pending, error) {
	const op = "boltstore: pending"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var out []store.Pending
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = pendingIn(tx.Bucket(bucketOutbox), limit)
		return err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// pendingIn reads up to limit (0 or less: store.MaxLimit) outbox entries,
// oldest first.
func pendingIn(b *bolt.Bucket, limit int) ([]store.Pending, error) {
	if limit <= 0 || limit > store.MaxLimit {
		limit = store.MaxLimit
	}
	var out []store.Pending
	c := b.Cursor()
	for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
		if len(k) != 8 {
			return nil, fmt.Errorf("outbox key %x is not a sequence", k)
		}
		e, err := decodeEvent(v)
		if err != nil {
			return nil, fmt.Errorf("outbox entry %d: %w", binary.BigEndian.Uint64(k), err)
		}
		out = append(out, store.Pending{Event: e, Seq: strconv.FormatUint(binary.BigEndian.Uint64(k), 10)})
	}
	return out, nil
}

// outboxKeys turns outbox seqs into their bucket keys.
func outboxKeys(seqs []string) ([][]byte, error) {
	keys := make([][]byte, len(seqs))
	for i, seq := range seqs {
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not an outbox seq", store.ErrInvalid, seq)
		}
		keys[i] = binary.BigEndian.AppendUint64(nil, n)
	}
	return keys, nil
}

// MarkSent deletes outbox entries; entries already gone are ignored.
func (s *Store) MarkSent(ctx context.Context, seqs ...string) error {
	const op = "boltstore: mark sent"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	keys, err := outboxKeys(seqs)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(keys) == 0 {
		return nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return deleteKeys(tx.Bucket(bucketOutbox), keys)
	})
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// deleteKeys deletes keys from b; keys already gone are ignored.
func deleteKeys(b *bolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// MarkSentThenPending is MarkSent then Pending in one transaction
// (store.SentMarkReader).
func (s *Store) MarkSentThenPending(ctx context.Context, seqs []string, limit int) ([]store.Pending, error) {
	const op = "boltstore: mark sent, then pending"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	keys, err := outboxKeys(seqs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if len(keys) == 0 {
		return s.Pending(ctx, limit)
	}
	var out []store.Pending
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if err := deleteKeys(b, keys); err != nil {
			return err
		}
		var err error
		out, err = pendingIn(b, limit)
		return err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// Ping checks that the file is open.
func (s *Store) Ping(ctx context.Context) error {
	const op = "boltstore: ping"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fail(op, err)
	}
	return nil
}

// Close closes the file, waiting for transactions in flight.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.path, err)
	}
	return nil
}

// fail wraps an error from a transaction: the port's own errors (conflict,
// not found) and decoding errors pass through, an id or value too large for
// bbolt is ErrInvalid, and failures to reach or write the file (closed
// database, disk errors) are ErrUnavailable.
func fail(op string, err error) error {
	var corrupt *corruptError
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound), errors.As(err, &corrupt):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, bolterrors.ErrKeyTooLarge), errors.Is(err, bolterrors.ErrValueTooLarge):
		return fmt.Errorf("%s: %w: %w", op, store.ErrInvalid, err)
	}
	return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
}

func recordBucket(tx *bolt.Tx, kind string) *bolt.Bucket {
	return tx.Bucket(bucketRecords).Bucket([]byte(kind))
}

func indexBucket(tx *bolt.Tx, kind, term string) *bolt.Bucket {
	kb := tx.Bucket(bucketIndex).Bucket([]byte(kind))
	if kb == nil {
		return nil
	}
	return kb.Bucket([]byte(term))
}

// createBuckets walks (creating) the nested buckets top/names...
func createBuckets(tx *bolt.Tx, top []byte, names ...[]byte) (*bolt.Bucket, error) {
	b := tx.Bucket(top)
	for _, n := range names {
		var err error
		if b, err = b.CreateBucketIfNotExists(n); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// corruptError is a stored value that does not decode: a bug or a damaged
// file, never a reason to call the store unavailable.
type corruptError struct{ what string }

func (e *corruptError) Error() string { return "corrupt " + e.what }

// encodeRecord lays out a record value as
//
//	uvarint version | uvarint term count | (uvarint length, term bytes)... | data
//
// Data takes the rest, so it needs no length.
func encodeRecord(version int64, terms []string, data []byte) []byte {
	n := 2*binary.MaxVarintLen64 + len(data)
	for _, t := range terms {
		n += binary.MaxVarintLen64 + len(t)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(version))
	b = binary.AppendUvarint(b, uint64(len(terms)))
	for _, t := range terms {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
	}
	return append(b, data...)
}

// decodeRecord copies what it returns: bbolt's bytes are only valid inside
// the transaction.
func decodeRecord(kind, id string, v []byte) (store.Record, error) {
	r := reader{b: v}
	version := r.uvarint()
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each term takes at least its length byte
		r.err = errors.New("term count past the end")
	}
	var terms []string
	for range n {
		if r.err != nil {
			break
		}
		terms = append(terms, string(r.bytes()))
	}
	if r.err != nil || version == 0 {
		return store.Record{}, &corruptError{what: fmt.Sprintf("record %s/%s", kind, id)}
	}
	return store.Record{Kind: kind, ID: id, Version: int64(version), Data: bytes.Clone(r.b), Index: terms}, nil
}

// encodeEvent lays out an outbox value as
//
//	uvarint length | id | uvarint length | subject | data
func encodeEvent(e store.Event) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(e.ID)+len(e.Subject)+len(e.Data))
	b = binary.AppendUvarint(b, uint64(len(e.ID)))
	b = append(b, e.ID...)
	b = binary.AppendUvarint(b, uint64(len(e.Subject)))
	b = append(b, e.Subject...)
	return append(b, e.Data...)
}

func decodeEvent(v []byte) (store.Event, error) {
	r := reader{b: v}
	id := string(r.bytes())
	subject := string(r.bytes())
	if r.err != nil {
		return store.Event{}, &corruptError{what: "outbox entry"}
	}
	return store.Event{ID: id, Subject: subject, Data: bytes.Clone(r.b)}, nil
}

// reader consumes uvarints and length-prefixed byte strings from b; the
// first malformed read sets err and makes later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errors.New("length past the end")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
