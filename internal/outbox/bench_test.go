package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/carbondesk/carbondesk/internal/natsx"
	"github.com/carbondesk/carbondesk/internal/outbox"
	"github.com/carbondesk/carbondesk/internal/store"
	"github.com/carbondesk/carbondesk/internal/testenv"
)

// BenchmarkRelay measures how many events per second the relay moves from a
// bolt outbox into an embedded JetStream stream (in-process connection),
// beside its baselines in the same run: the same number of acknowledged
// publishes without any store, one at a time and pipelined (async). The
// relay runs with atomic batches as the single binary sets it up
// (AtomicMinSyncAlways: a full read of 256 events goes out as one batch)
// and pipelined only (the default). Both with the
// server's sync always (the single binary's setting) and relaxed (fsync
// every 2 min), which is the price of not losing acknowledged events on a
// host crash.
//
//	go test -run '^$' -bench Relay -benchtime 5000x ./internal/outbox/
func BenchmarkRelay(b *testing.B) {
	for _, sync := range []struct {
		name    string
		relaxed bool
	}{{"sync=always", false}, {"sync=relaxed", true}} {
		for _, mode := range []struct {
			name      string
			atomicMin int
		}{{"relay-atomic", outbox.AtomicMinSyncAlways}, {"relay-pipelined", 0}} {
			b.Run(sync.name+"/"+mode.name, func(b *testing.B) {
				const service = "bench"
				js := testenv.JetStream(b, testenv.StartNATS(b, natsx.Options{RelaxedSync: sync.relaxed}))
				testenv.Stream(b, js, service)
				st := openBoltAt(b, filepath.Join(b.TempDir(), "x.db"))
				fill(b, st, service, b.N)
				r := outbox.New(st, js, nil, outbox.Options{AtomicMin: mode.atomicMin})

				b.ResetTimer()
				start := time.Now()
				if err := r.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
				b.StopTimer()
				if got := r.Published(); got != uint64(b.N) {
					b.Fatalf("published %d, want %d", got, b.N)
				}
				b.ReportMetric(float64(r.AtomicBatches()), "atomic-batches")
			})
		}
		b.Run(sync.name+"/baseline-publish", func(b *testing.B) {
			const service = "bench"
			js := testenv.JetStream(b, testenv.StartNATS(b, natsx.Options{RelaxedSync: sync.relaxed}))
			testenv.Stream(b, js, service)
			evs := make([]store.Event, b.N)
			for i := range evs {
				ev, err := newEvent(service, fmt.Sprintf("e%d", i), 1)
				if err != nil {
					b.Fatal(err)
				}
				evs[i] = ev
			}
			ctx := context.Background()

			b.ResetTimer()
			start := time.Now()
			for _, ev := range evs {
				if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: ev.Subject, Data: ev.Data}, jetstream.WithMsgID(ev.ID)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
		b.Run(sync.name+"/baseline-async", func(b *testing.B) {
			const service = "bench"
			js := testenv.JetStream(b, testenv.StartNATS(b, natsx.Options{RelaxedSync: sync.relaxed}))
			testenv.Stream(b, js, service)
			evs := make([]store.Event, b.N)
			for i := range evs {
				ev, err := newEvent(service, fmt.Sprintf("e%d", i), 1)
				if err != nil {
					b.Fatal(err)
				}
				evs[i] = ev
			}

			b.ResetTimer()
			start := time.Now()
			for _, ev := range evs {
				if _, err := js.PublishMsgAsync(&nats.Msg{Subject: ev.Subject, Data: ev.Data}, jetstream.WithMsgID(ev.ID), jetstream.WithStallWait(time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("async publishes not acknowledged within a minute")
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// fill commits n events, 256 to a batch, to keep the setup short.
func fill(b *testing.B, st store.Store, service string, n int) {
	b.Helper()
	for i := 0; i < n; {
		var batch store.Batch
		for ; i < n && len(batch.Events) < 256; i++ {
			ev, err := newEvent(service, fmt.Sprintf("e%d", i), 1)
			if err != nil {
				b.Fatal(err)
			}
			batch.Events = append(batch.Events, ev)
		}
		if _, err := st.Apply(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
