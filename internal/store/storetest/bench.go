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
