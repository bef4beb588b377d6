package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/carbondesk/carbondesk/internal/store"
)

// JetStream atomic batch publishing (nats-server 2.12+, ADR-50): every
// message carries the batch id and its 1-based place in the batch; the last
// also carries the commit header and is the only one that asks for an
// acknowledgement. The server stages the messages and stores all of them or
// none when the commit arrives; with sync always it fsyncs once per batch.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrMsgID       = "Nats-Msg-Id"
)

// JetStream error codes an atomic batch can be refused with.
const (
	jsAtomicDisabled      = 10174 // the stream does not allow atomic publish
	jsAtomicUnsupportedHd = 10177 // a header atomic batches do not take
	jsAtomicTooLarge      = 10199 // more messages than the server's batch limit
	jsAtomicDuplicate     = 10201 // the stream already holds one of the events
	jsAtomicTooMany       = 10210 // too many batches in flight on the server
)

// atomicFits says whether pending goes out as one atomic batch: enough
// events (Options.AtomicMin), one stream, an unreplicated stream (the
// replicated path orders by sequence, see Options.Replicated), and a server
// that has atomic batches and has not refused them.
func (r *Relay) atomicFits(pending []store.Pending) bool {
	if r.opts.AtomicMin <= 0 || len(pending) < r.opts.AtomicMin || r.opts.Replicated || r.noAtomic.Load() {
		return false
	}
	nc := r.js.Conn()
	if nc == nil || !serverAtLeast(nc.ConnectedServerVersion(), 2, 12) {
		return false
	}
	first := streamPrefix(pending[0].Subject)
	for i := 1; i < len(pending); i++ {
		if streamPrefix(pending[i].Subject) != first {
			return false
		}
	}
	return true
}

// serverAtLeast compares a server version ("2.15.3", "2.12.0-beta") with
// major.minor; an unknown version is not at least anything.
func serverAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// publishAtomic publishes pending as one atomic batch and waits for the
// commit's acknowledgement. All of it is sent, or none: on an error nothing
// was stored, except when the acknowledgement was lost, and then the next
// attempt's copies are recognised by their message ids.
//
// Order needs no expected-last header here (atomic batches do not take
// Nats-Expected-Last-Msg-Id): pending starts at the oldest unsent event, so
// everything before it is in the stream already, and the batch lands whole
// or not at all.
func (r *Relay) publishAtomic(ctx context.Context, pending []store.Pending) ([]string, error) {
	nc := r.js.Conn()
	first := &pending[0]
	if !nc.IsConnected() {
		return nil, fmt.Errorf("outbox: publish %s: %w (status %s)", first.ID, errDisconnected, nc.Status())
	}
	batchID := ulid.Make().String()
	n := len(pending)
	for i := range n - 1 {
		p := &pending[i]
		msg := &nats.Msg{Subject: p.Subject, Data: p.Data, Header: nats.Header{
			hdrBatchID:  {batchID},
			hdrBatchSeq: {strconv.Itoa(i + 1)},
			hdrMsgID:    {p.ID},
		}}
		if err := nc.PublishMsg(msg); err != nil {
			return nil, fmt.Errorf("outbox: publish %s to %s (atomic batch of %d): %w", p.ID, p.Subject, n, err)
		}
	}
	last := &pending[n-1]
	msg := &nats.Msg{Subject: last.Subject, Data: last.Data, Header: nats.Header{
		hdrBatchID:     {batchID},
		hdrBatchSeq:    {strconv.Itoa(n)},
		hdrBatchCommit: {"1"},
		hdrMsgID:       {last.ID},
	}}
	rctx, cancel := context.WithTimeout(ctx, r.opts.AckTimeout)
	resp, err := nc.RequestMsgWithContext(rctx, msg)
	cancel()
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			err = fmt.Errorf("%w: %w", jetstream.ErrNoStreamResponse, err)
		}
		return nil, fmt.Errorf("outbox: publish %s..%s to %s (atomic batch of %d): %w", first.ID, last.ID, last.Subject, n, err)
	}
	var ack struct {
		Stream string              `json:"stream"`
		Batch  string              `json:"batch"`
		Count  int                 `json:"count"`
		Error  *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, fmt.Errorf("outbox: atomic batch of %d: unreadable acknowledgement %q: %w", n, resp.Data, err)
	}
	if ack.Error != nil {
		return nil, fmt.Errorf("outbox: publish %s..%s to %s (atomic batch of %d): %w", first.ID, last.ID, last.Subject, n, ack.Error)
	}
	if ack.Batch != batchID || ack.Count != n {
		return nil, fmt.Errorf("outbox: atomic batch %s of %d: acknowledged as batch %q of %d", batchID, n, ack.Batch, ack.Count)
	}
	r.atomicBatches.Add(1)
	sent := make([]string, n)
	for i := range pending {
		sent[i] = pending[i].Seq
		if r.opts.AfterPublish != nil {
			r.opts.AfterPublish(pending[i])
		}
	}
	return sent, nil
}

// pipelineInstead says whether a refused atomic batch should go out
// pipelined at once: whenever JetStream answered with an error, since the
// batch then stored nothing. The usual cause is that the stream already held
// one of its events (a re-publish after a crash, or another relay on the
// same outbox), which the pipelined path acknowledges copy by copy; any
// other refusal (an event too large, a full stream) is named by the
// pipelined path, event by event, after it published the prefix before it.
// A stream or server that refuses atomic batches altogether turns them off
// for this relay. No answer at all (no stream, a timeout, NATS away) is
// retried later as it is.
func (r *Relay) pipelineInstead(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsAtomicDisabled, jsAtomicUnsupportedHd, jsAtomicTooLarge:
		if !r.noAtomic.Swap(true) {
			r.log.Warn("the stream refused an atomic batch; publishing pipelined from now on (one fsync per event with sync always)", "error", err)
		}
	case jsAtomicDuplicate, jsAtomicTooMany:
	default:
		r.log.Debug("atomic batch refused; publishing it pipelined", "error", err)
	}
	return true
}

// AtomicBatches is how many batches this relay published atomically.
func (r *Relay) AtomicBatches() uint64 { return r.atomicBatches.Load() }
