package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/carbondesk/carbondesk/internal/store"
)

// Bench measures an adapter on the calls every request makes: Apply of one
// put and one event (a typical state change), Get, and a List page. open
// returns an empty store of the benchmark's own.
func Bench(b *testing.B, open func(tb testing.TB) store.Store) {
	// About the size of a marshalled institution or product.
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i)
	}
	batch := func(id string) store.Batch {
		return store.Batch{
			Puts: []store.Put{{Kind: kind, ID: id, Expect: store.MustNotExist, Data: data,
				Index: []string{"state=ACTIVE", "zone=wuchang"}}},
			Events: []store.Event{{ID: "ev-" + id, Subject: "carbondesk.test.thing.created", Data: data}},
		}
	}

	b.Run("Apply", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Apply(ctx, batch(fmt.Sprintf("id-%09d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ApplyParallel", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Apply(ctx, batch(fmt.Sprintf("id-%09d", next.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	// A batch shaped like PostDemand's: the demand and five matches (6
	// puts, with 2 and 6 index terms, the matches sharing four index keys),
	// and six events carrying the matches with their reasons (~1.5 KB
	// each). Until PostDemand stopped writing them, the batch also held the
	// matches' five pair claims (puts of another kind, no terms, data = the
	// match id): figures taken before that are of 11 puts, not 6.
	big := make([]byte, 1500)
	for i := range big {
		big[i] = byte(i)
	}
	demandBatch := func(n int) store.Batch {
		d := fmt.Sprintf("d-%09d", n)
		bt := store.Batch{
			Puts: []store.Put{{Kind: kind, ID: d, Expect: store.MustNotExist, Data: data,
				Index: []string{"state=OPEN", "ent=91420106MA4K0000X1"}}},
			Events: []store.Event{{ID: "ev-" + d, Subject: "carbondesk.test.demand.posted", Data: data}},
		}
		for j := range 5 {
			m := fmt.Sprintf("%s-m%d", d, j)
			bt.Puts = append(bt.Puts, store.Put{Kind: kind, ID: m, Expect: store.MustNotExist, Data: big,
				Index: []string{"demand=" + d, fmt.Sprintf("inst=i%d", j), fmt.Sprintf("icode=c%d", j), fmt.Sprintf("prod=p%d-%d", n%100, j), "ent=91420106MA4K0000X1", "state=PROPOSED"}})
			bt.Events = append(bt.Events, store.Event{ID: "ev-" + m, Subject: "carbondesk.test.match.proposed", Data: big})
		}
		return bt
	}
	b.Run("ApplyDemandShaped", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Apply(ctx, demandBatch(i)); err != nil {
				b.Fatal(err)
			}
		}
	})

	const seeded = 1000
	seed := func(b *testing.B) store.Store {
		s := open(b)
		for from := 0; from < seeded; from += 100 {
			var bt store.Batch
			for i := from; i < from+100; i++ {
				bt.Puts = append(bt.Puts, batch(fmt.Sprintf("id-%09d", i)).Puts...)
			}
			if _, err := s.Apply(context.Background(), bt); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	b.Run("Get", func(b *testing.B) {
		s := seed(b)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			if _, err := s.Get(ctx, kind, fmt.Sprintf("id-%09d", i%seeded)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetParallel", func(b *testing.B) {
		s := seed(b)
		ctx := context.Background()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, kind, fmt.Sprintf("id-%09d", next.Add(1)%seeded)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// Pending256 is the relay's read: 256 pending events of ~1.5 KB.
	b.Run("Pending256", func(b *testing.B) {
		s := open(b)
		ctx := context.Background()
		var bt store.Batch
		for i := range 256 {
			bt.Events = append(bt.Events, store.Event{ID: fmt.Sprintf("ev-%09d", i), Subject: "carbondesk.test.match.proposed", Data: big})
		}
		if _, err := s.Apply(ctx, bt); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			p, err := s.Pending(ctx, 256)
			if err != nil || len(p) != 256 {
				b.Fatalf("Pending: %d events, %v", len(p), err)
			}
		}
	})
	b.Run("List50", func(b *testing.B) {
		s := seed(b)
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			q := store.Query{Index: "state=ACTIVE", Limit: 50, After: fmt.Sprintf("id-%09d", (i*50)%(seeded-50))}
			if _, err := s.List(ctx, kind, q); err != nil {
				b.Fatal(err)
			}
		}
	})
}
