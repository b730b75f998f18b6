package spd

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// Benchmarks of lookups, changes and memory, at the sizes of issue 3.
// bench/RESULTS.md records the figures and the command behind them.
//
// The policies are site-to-site ones between pairs of /24s (pairPolicy),
// hashed with thresholds of 24 and 24. Lookups cycle through precomputed
// packets, each of a random policy: 65 536 of them (spreadKeys) by
// default, as many flows as a busy gateway has, whose policies at a
// million do not fit in the caches, so each lookup is two cache and TLB
// misses; 1 024 (hotKeys) in the "hot" variants, whose policies do fit,
// which shows the cost of the lookup itself at every size.

const (
	spreadKeys = 1 << 16
	hotKeys    = 1 << 10
)

var benchThresholds = Thresholds{V4Local: 24, V4Remote: 24, V6Local: 64, V6Remote: 64}

// benchPairs are the first n pair policies, shared by the benchmarks.
var benchPairs = sync.OnceValue(func() []Policy {
	ps := make([]Policy, 1<<20)
	for i := range ps {
		ps[i] = pairPolicy(i)
	}
	return ps
})

// benchDBs caches the lookup databases: the largest take a second to build.
var benchDBs sync.Map

type benchConfig struct {
	hashed int // pair policies, hashed
	listed int // pair policies kept unhashed by thresholds of 32
	extra  int // unhashed policies beside the hashed ones
	ahead  bool
	nkeys  int
}

func benchDB(b *testing.B, c benchConfig) (*DB, []Key) {
	if v, ok := benchDBs.Load(c); ok {
		r := v.([2]any)
		return r[0].(*DB), r[1].([]Key)
	}
	th, n := benchThresholds, c.hashed
	if c.listed > 0 {
		th, n = DefaultThresholds(), c.listed
	}
	db := newDB(b, th)
	ps := append([]Policy(nil), benchPairs()[:n]...)
	for i := range c.extra {
		ps = append(ps, extraPolicy(i, c.ahead))
	}
	if _, err := db.InsertBatch(ps); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]Key, c.nkeys)
	for i := range keys {
		keys[i] = pairKey(rng.IntN(n), rng.IntN(1<<16))
	}
	benchDBs.Store(c, [2]any{db, keys})
	return db, keys
}

// extraPolicy is one of the unhashed policies beside the hashed ones: a
// /23 (shorter than the threshold of 24) that no benchmark key falls in.
// Ahead of the hashed policies (a better priority) every lookup scans all
// of them; behind, it stops at the first.
func extraPolicy(i int, ahead bool) Policy {
	p := Policy{
		Dir: DirOut,
		Selector: Selector{
			Local:  netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(2 * i), 0}), 23),
			Remote: netip.MustParsePrefix("172.16.0.0/12"),
		},
		Priority: 200,
		Action:   Bypass,
	}
	if ahead {
		p.Priority = 50
	}
	return p
}

func BenchmarkLookup(b *testing.B) {
	var cases []struct {
		name string
		c    benchConfig
	}
	add := func(name string, c benchConfig) {
		cases = append(cases, struct {
			name string
			c    benchConfig
		}{name, c})
	}
	for _, n := range benchSizes {
		add(fmt.Sprintf("hashed-%d", n), benchConfig{hashed: n, nkeys: spreadKeys})
		add(fmt.Sprintf("hashed-%d-hot", n), benchConfig{hashed: n, nkeys: hotKeys})
		add(fmt.Sprintf("hashed-%d+100-unhashed-behind", n), benchConfig{hashed: n, extra: 100, nkeys: spreadKeys})
		add(fmt.Sprintf("hashed-%d+100-unhashed-ahead", n), benchConfig{hashed: n, extra: 100, ahead: true, nkeys: spreadKeys})
	}
	for _, n := range []int{10, 1000, 10_000, 100_000} {
		add(fmt.Sprintf("list-only-%d", n), benchConfig{listed: n, nkeys: spreadKeys})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			db, keys := benchDB(b, c.c)
			mask := len(keys) - 1
			runtime.GC() // not the garbage of building the database
			b.ReportAllocs()
			b.ResetTimer()
			var miss int
			for i := 0; i < b.N; i++ {
				if db.Lookup(DirOut, &keys[i&mask]) == nil {
					miss++
				}
			}
			if miss > 0 {
				b.Fatalf("%d lookups found nothing", miss)
			}
		})
	}
}

var benchSizes = []int{10, 1000, 100_000, 1_000_000}

// BenchmarkLookupBatch is BenchmarkLookup's hashed cases through
// LookupBatch, 64 keys a call (a worker's batch, dataplane.Batch), reported
// per key.
func BenchmarkLookupBatch(b *testing.B) {
	const batch = 64
	for _, n := range benchSizes {
		for _, hot := range []bool{false, true} {
			c, name := benchConfig{hashed: n, nkeys: spreadKeys}, fmt.Sprintf("hashed-%d", n)
			if hot {
				c.nkeys, name = hotKeys, name+"-hot"
			}
			b.Run(name, func(b *testing.B) {
				db, keys := benchDB(b, c)
				out := make([]*Entry, batch)
				runtime.GC()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += batch {
					j := i & (len(keys) - 1)
					db.LookupBatch(DirOut, keys[j:j+batch], out)
				}
			})
		}
	}
}

// BenchmarkLookupBatchMemory is the memory traffic of BenchmarkLookupBatch's
// spread cases alone: for each batch of 64 keys, prefetch their buckets,
// read the heads, prefetch the two lines of each first entry and read them,
// with the buckets found beforehand and no matching. In a table larger
// than the caches this is the part of a batched lookup that no code can
// take away without a different layout; at 10 policies it is what L1 hits
// cost.
func BenchmarkLookupBatchMemory(b *testing.B) {
	const batch = 64
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("hashed-%d", n), func(b *testing.B) {
			db, keys := benchDB(b, benchConfig{hashed: n, nkeys: spreadKeys})
			s := db.cur.Load()
			slots := make([]*atomic.Pointer[Entry], len(keys))
			for i := range keys {
				var q query
				q.set(DirOut, &keys[i])
				slots[i] = &s.buckets[s.bucketOfQuery(&q)]
			}
			var lines [2 * batch]unsafe.Pointer
			var heads [batch]*Entry
			var x uint8
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				sl := slots[i&(len(keys)-1):][:batch]
				for k, p := range sl {
					lines[k] = unsafe.Pointer(p)
				}
				prefetch(lines[:batch])
				for k, p := range sl {
					e := p.Load()
					heads[k] = e
					lines[2*k], lines[2*k+1] = unsafe.Pointer(e), unsafe.Pointer(&e.d.flags)
				}
				prefetch(lines[:])
				for _, e := range heads {
					x += e.d.flags + uint8(e.d.l[0])
				}
			}
			sinkByte = x
		})
	}
}

// BenchmarkLookupParallel is lookups from every core at once, in the table
// of a million, the way the workers do them.
func BenchmarkLookupParallel(b *testing.B) {
	db, keys := benchDB(b, benchConfig{hashed: 1_000_000, nkeys: spreadKeys})
	b.ReportAllocs()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			sinkEntry = db.Lookup(DirOut, &keys[i&(len(keys)-1)])
			i++
		}
	})
}

// BenchmarkLookupWhileWriting is lookups in a table of 100 000 while
// another goroutine inserts and deletes as fast as it can, the worst case
// for the re-reads of Lookup (see its comment). It reports the writer's
// rate beside.
func BenchmarkLookupWhileWriting(b *testing.B) {
	db := newDB(b, benchThresholds)
	if _, err := db.InsertBatch(benchPairs()[:100_000]); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([]Key, spreadKeys)
	for i := range keys {
		keys[i] = pairKey(rng.IntN(100_000), rng.IntN(1<<16))
	}
	var stop atomic.Bool
	var writes atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		ps := benchPairs()[100_000:]
		for i := 0; !stop.Load(); i++ {
			id, err := db.Insert(ps[i%len(ps)])
			if err != nil {
				panic(err)
			}
			if err := db.Delete(id); err != nil {
				panic(err)
			}
			writes.Add(2)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sinkEntry = db.Lookup(DirOut, &keys[i&(len(keys)-1)])
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	b.ReportMetric(float64(writes.Load())/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkInsert inserts hashed policies one at a time.
//
// steady-100000: into a table of 100 000 that stays at that size (the
// policies are deleted again, off the clock, every 10 000), so no growth.
// 1000000-one-by-one: an op is loading a million policies into an empty
// database with single inserts, growth and all.
func BenchmarkInsert(b *testing.B) {
	b.Run("steady-100000", func(b *testing.B) {
		db := newDB(b, benchThresholds)
		pairs := benchPairs()
		if _, err := db.InsertBatch(pairs[:100_000]); err != nil {
			b.Fatal(err)
		}
		more := pairs[100_000:]
		ids := make([]ID, 0, 10_000)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			id, err := db.Insert(more[i%len(more)])
			if err != nil {
				b.Fatal(err)
			}
			if ids = append(ids, id); len(ids) == cap(ids) {
				b.StopTimer()
				deleteAll(b, db, ids)
				ids = ids[:0]
				b.StartTimer()
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
	b.Run("1000000-one-by-one", func(b *testing.B) {
		ps := benchPairs()[:1_000_000]
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			db := newDB(b, benchThresholds)
			for _, p := range ps {
				if _, err := db.Insert(p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "inserts/s")
	})
}

// BenchmarkDelete deletes hashed policies one at a time, the mirror of
// BenchmarkInsert: from a table kept at 100 000 (refilled off the clock),
// and an op of deleting a million, shrinking and compaction included.
func BenchmarkDelete(b *testing.B) {
	b.Run("steady-100000", func(b *testing.B) {
		db := newDB(b, benchThresholds)
		pairs := benchPairs()
		if _, err := db.InsertBatch(pairs[:100_000]); err != nil {
			b.Fatal(err)
		}
		more := pairs[100_000:]
		var ids []ID
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if len(ids) == 0 {
				b.StopTimer()
				for j := range 10_000 {
					id, err := db.Insert(more[(i+j)%len(more)])
					if err != nil {
						b.Fatal(err)
					}
					ids = append(ids, id)
				}
				b.StartTimer()
			}
			if err := db.Delete(ids[len(ids)-1]); err != nil {
				b.Fatal(err)
			}
			ids = ids[:len(ids)-1]
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deletes/s")
	})
	b.Run("1000000-one-by-one", func(b *testing.B) {
		ps := benchPairs()[:1_000_000]
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			db := newDB(b, benchThresholds)
			ids, err := db.InsertBatch(ps)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			deleteAll(b, db, ids)
		}
		b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "deletes/s")
	})
}

func deleteAll(b *testing.B, db *DB, ids []ID) {
	for _, id := range ids {
		if err := db.Delete(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertBatch loads a million policies into an empty database in
// one call.
func BenchmarkInsertBatch(b *testing.B) {
	b.Run("1000000", func(b *testing.B) {
		ps := benchPairs()[:1_000_000]
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			db := newDB(b, benchThresholds)
			if _, err := db.InsertBatch(ps); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "policies/s")
	})
}

// BenchmarkMemory reports the heap that a million hashed IPv4 policies
// take, table, entries and ID index included, loaded in one batch and one
// by one (which leaves the table just after a doubling).
func BenchmarkMemory(b *testing.B) {
	for _, name := range []string{"hashed-v4-1000000-batch", "hashed-v4-1000000-one-by-one"} {
		b.Run(name, func(b *testing.B) {
			ps := benchPairs()[:1_000_000]
			var perPolicy float64
			for i := 0; i < b.N; i++ {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				db := newDB(b, benchThresholds)
				if name == "hashed-v4-1000000-batch" {
					if _, err := db.InsertBatch(ps); err != nil {
						b.Fatal(err)
					}
				} else {
					for _, p := range ps {
						if _, err := db.Insert(p); err != nil {
							b.Fatal(err)
						}
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perPolicy = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(ps))
				runtime.KeepAlive(db)
			}
			b.ReportMetric(perPolicy, "B/policy")
		})
	}
}
