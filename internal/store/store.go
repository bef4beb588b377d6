// Package store is the storage port every CarbonDesk service writes through.
//
// A store holds versioned records grouped by kind ("institution", "product"),
// keeps secondary indexes for listing with cursors, and applies one atomic
// Batch that writes several records under version checks AND appends their
// events to a transactional outbox. The outbox relay (package outbox) later
// publishes those events to NATS JetStream and marks them sent.
//
// Two adapters implement the port: redisstore (production) and boltstore (the
// single binary's embedded default). Both pass the same conformance suite in
// storetest. The adapters translate their own failures into the sentinels
// below, so services never see a Redis or bbolt error type.
//
// A Store is scoped to one service: the adapter namespaces every key (a Redis
// key prefix, a bbolt file), so services cannot read each other's data.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors. Adapters wrap them; callers test with errors.Is.
var (
	// ErrNotFound: no record with that kind and id.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a version check in a Batch failed. The error is a
	// *ConflictError naming the record.
	ErrConflict = errors.New("store: version conflict")
	// ErrUnavailable: the backing store cannot be reached or timed out. A
	// batch is never applied in part; but when the store timed out after the
	// write was sent, the batch may have been applied whole. Read again
	// before retrying a write that must not happen twice.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrInvalid: the call itself is malformed (empty kind or id, the same
	// record twice in one batch...). A programming error, not bad user input.
	ErrInvalid = errors.New("store: invalid request")
)

// Version expectations for Put.Expect.
const (
	// MustNotExist: the record must not exist yet (create, unique claim).
	MustNotExist int64 = 0
	// AnyVersion: write whatever version is there (no check). Used sparingly:
	// read models that track their own ordering, unique-key releases.
	AnyVersion int64 = -1
)

// ConflictError tells which record failed its version check.
type ConflictError struct {
	Kind    string
	ID      string
	Expect  int64 // what the batch expected (0: must not exist)
	Current int64 // what the store holds (0: does not exist)
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: version conflict on %s/%s: expected %d, found %d", e.Kind, e.ID, e.Expect, e.Current)
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Record is one stored entity.
type Record struct {
	Kind    string
	ID      string
	Version int64  // 1 after the first write, +1 on every write
	Data    []byte // opaque to the store (services store protobuf)
	Index   []string
}

// Put writes (or deletes) one record inside a Batch.
type Put struct {
	// Kind is a short name such as "institution", without ':' (the Redis
	// adapter builds keys from it and rejects one).
	Kind string
	ID   string
	// Expect is the version the record must have now: MustNotExist (0), a
	// positive version, or AnyVersion (-1).
	Expect int64
	// Delete removes the record and its index entries instead of writing.
	// Deleting a record that does not exist (with MustNotExist or
	// AnyVersion) does nothing. A record created again after a delete starts
	// at version 1.
	Delete bool
	Data   []byte
	// Index is the complete set of index terms for the new version, for
	// example "state=ACTIVE" or "kind=BANK". Terms of the previous version
	// that are not listed are removed. Every record is also in the kind's
	// unnamed all-records index (term ""). Adapters store the terms as
	// NormalizeIndex returns them.
	Index []string
}

// Event is an outbox entry written in the same Batch as the change it
// describes.
type Event struct {
	ID      string // unique, sortable; becomes the JetStream message id
	Subject string // e.g. carbondesk.registry.institution.approved
	Data    []byte // marshalled eventv1.Envelope
}

// Batch is one atomic write: every Put's version check passes and all puts
// and events are stored, or nothing is.
type Batch struct {
	Puts   []Put
	Events []Event
}

// Pending is an outbox entry not yet marked sent.
type Pending struct {
	Event
	// Seq orders entries and is what MarkSent takes; adapter-specific.
	Seq string
}

// Query selects a page of records of one kind.
type Query struct {
	// Index is the term to scan ("" scans every record of the kind).
	Index string
	// After is the cursor: the id of the last record of the previous page.
	// Records are returned in ascending id order.
	After string
	// Limit is the most records to return; adapters cap it at MaxLimit, and
	// 0 or less means MaxLimit.
	Limit int
	// Match, when set, filters records after they are read; records it
	// rejects do not count against Limit.
	Match func(Record) bool
}

// MaxLimit caps Query.Limit.
const MaxLimit = 1000

// Page is what List returns.
type Page struct {
	Records []Record
	// Next is the cursor for the following page; empty when no record is
	// left to scan.
	Next string
}

// Store is the port. All methods honour the context's deadline.
type Store interface {
	// Get reads one record; ErrNotFound when absent.
	Get(ctx context.Context, kind, id string) (Record, error)
	// List scans one index in id order.
	List(ctx context.Context, kind string, q Query) (Page, error)
	// Apply commits a batch atomically and returns the new version of each
	// put, in order (0 for deletes). A failed version check returns a
	// *ConflictError and writes nothing.
	Apply(ctx context.Context, b Batch) ([]int64, error)
	// Pending returns up to limit outbox entries, oldest first (limit is
	// capped like Query.Limit).
	Pending(ctx context.Context, limit int) ([]Pending, error)
	// MarkSent removes entries from the outbox once the stream holds them.
	// Seqs already removed are ignored, so a repeated call is harmless; a seq
	// the adapter could never have issued is ErrInvalid.
	MarkSent(ctx context.Context, seqs ...string) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// SentMarkReader is an optional capability of a Store: MarkSent(seqs...)
// then Pending(limit), in one round trip (Redis) or one transaction
// (bbolt). The outbox relay uses it, where the store has it, to mark one
// round's events sent while it reads the next round's. It fails as either
// call would; a failure may leave seqs marked or not, which is harmless
// (MarkSent ignores seqs already removed).
type SentMarkReader interface {
	MarkSentThenPending(ctx context.Context, seqs []string, limit int) ([]Pending, error)
}

// Validate checks a batch for programming errors common to every adapter:
// empty kinds or ids, a record twice, an event without id or subject.
func (b Batch) Validate() error {
	seen := make(map[[2]string]bool, len(b.Puts))
	for i, p := range b.Puts {
		if p.Kind == "" || p.ID == "" {
			return fmt.Errorf("%w: put %d has empty kind or id", ErrInvalid, i)
		}
		if p.Expect < AnyVersion {
			return fmt.Errorf("%w: put %s/%s expects version %d", ErrInvalid, p.Kind, p.ID, p.Expect)
		}
		k := [2]string{p.Kind, p.ID}
		if seen[k] {
			return fmt.Errorf("%w: %s/%s appears twice in one batch", ErrInvalid, p.Kind, p.ID)
		}
		seen[k] = true
	}
	for i, e := range b.Events {
		if e.ID == "" || e.Subject == "" {
			return fmt.Errorf("%w: event %d has empty id or subject", ErrInvalid, i)
		}
	}
	if len(b.Puts) == 0 && len(b.Events) == 0 {
		return fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	return nil
}

// NormalizeIndex returns terms sorted, without duplicates and without the
// implicit all-records term "": the form adapters store and return in
// Record.Index, so both adapters answer alike whatever order a service
// listed its terms in.
func NormalizeIndex(terms []string) []string {
	out := make([]string, 0, len(terms))
	for _, t := range terms {
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
