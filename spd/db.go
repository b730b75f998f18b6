package spd

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// cacheLine keeps what readers read off the lines writers write.
const cacheLine = 64

// compactMin is how many entries must have been unlinked from a table
// before it is rebuilt to let go of them (see Delete).
const compactMin = 4096

// DB is a security policy database, made by New. Any number of goroutines
// may call Lookup and LookupBatch at once, also while a writer runs; the
// methods that change the database serialize among themselves.
type DB struct {
	// cur and ver are all that a lookup reads of the DB. cur is the
	// published state. ver counts published changes: a writer adds to it
	// after the one store that publishes a change, and a lookup that sees
	// it unchanged around its reads saw at most one change happen, all of
	// it or none (see Lookup).
	cur atomic.Pointer[state]
	ver atomic.Uint64
	_   [cacheLine]byte

	mu sync.Mutex // serializes writers and guards the fields below
	// ids finds a policy's entry for Delete: in cur's table, or in one of
	// cur's lists. Every copy of an entry updates it.
	ids    handles
	seq    uint64 // insertion order of the last policy inserted
	hashed int    // entries in cur's table
	// built is how many entries cur's table was built with, and unlinked
	// how many have been deleted from it since. A build puts its entries
	// in one slab, which the garbage collector frees only when the last
	// of them is gone.
	built, unlinked int
	perDir          [numDirs]int
}

// New makes an empty database with the given hash thresholds.
func New(th Thresholds) (*DB, error) {
	if err := th.validate(); err != nil {
		return nil, fmt.Errorf("new SPD: %w", err)
	}
	db := &DB{}
	db.cur.Store(newState(th, newHashKey(), 0))
	return db, nil
}

// Insert adds a policy and returns its ID. A hashed policy costs a walk of
// its bucket; an unhashed one a copy of its list.
func (db *DB) Insert(p Policy) (ID, error) {
	d, err := compile(&p)
	if err != nil {
		return 0, fmt.Errorf("insert policy %v: %w", p, err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.seq++
	d.seq = db.seq
	d.id = db.ids.alloc()
	s := db.cur.Load()
	if s.th.hashes(&d) {
		e := &Entry{d: d}
		s.link(e)
		db.ids.set(d.id, e)
		db.hashed++
	} else {
		old := s.list(d.tag())
		// d is the newest, so it goes after every entry of its
		// priority.
		at := sort.Search(len(old), func(i int) bool { return d.before(&old[i].d) })
		l := make([]Entry, len(old)+1)
		for i := range old {
			l[i+btoi(i >= at)].d = old[i].d
		}
		l[at].d = d
		db.publishList(s, d.tag(), l)
	}
	db.perDir[p.Dir]++
	db.ver.Add(1)
	if overloaded(db.hashed, len(s.buckets)) {
		// Growing doubles the table, so its cost is O(1) per insert
		// over time; lookups go on in the old table meanwhile.
		db.rebuild(s.th, nil)
	}
	return d.id, nil
}

// InsertBatch adds policies all at once: it validates all of them, then
// builds a complete new state holding the old policies and the new ones
// and publishes it with one store, so a lookup sees all of them or none.
// ids[i] is the ID of ps[i], and ties in priority among them go to the
// earlier in ps. The cost is O(all policies), whatever the size of the
// batch: it is for loading a configuration, and for sets of policies that
// must appear together.
func (db *DB) InsertBatch(ps []Policy) ([]ID, error) {
	ds := make([]entryData, len(ps))
	for i := range ps {
		d, err := compile(&ps[i])
		if err != nil {
			return nil, fmt.Errorf("insert batch: policy %d (%v): %w", i, ps[i], err)
		}
		ds[i] = d
	}
	ids := make([]ID, len(ps))
	if len(ps) == 0 {
		return ids, nil
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	for i := range ds {
		db.seq++
		ds[i].seq = db.seq
		ds[i].id = db.ids.alloc()
		ids[i] = ds[i].id
		db.perDir[ds[i].tag()>>1]++
	}
	db.rebuild(db.cur.Load().th, ds)
	return ids, nil
}

// Delete removes a policy. A lookup that already returned its entry may go
// on using it.
func (db *DB) Delete(id ID) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	e := db.ids.get(id)
	if e == nil {
		return fmt.Errorf("delete policy %#x: %w", id, ErrNotFound)
	}
	s := db.cur.Load()
	if s.th.hashes(&e.d) {
		if !s.unlink(e) {
			panic("spd: indexed entry missing from its bucket")
		}
		db.hashed--
		db.unlinked++
	} else {
		old := s.list(e.d.tag())
		at := sort.Search(len(old), func(i int) bool { return !old[i].d.before(&e.d) })
		l := make([]Entry, len(old)-1)
		for i := range l {
			l[i].d = old[i+btoi(i >= at)].d
		}
		db.publishList(s, e.d.tag(), l)
	}
	db.ids.release(id)
	db.perDir[e.Dir()]--
	db.ver.Add(1)
	switch {
	case underloaded(db.hashed, len(s.buckets)):
		db.rebuild(s.th, nil)
	case db.unlinked >= compactMin && db.unlinked > db.built/2:
		// Half the slab of the last build is dead but pinned by the
		// rest: copy the live entries out.
		db.rebuild(s.th, nil)
	}
	return nil
}

// SetThresholds changes the hash thresholds. It rebuilds the whole
// database into a new state while lookups go on in the old one, and
// publishes it with one store.
func (db *DB) SetThresholds(th Thresholds) error {
	if err := th.validate(); err != nil {
		return fmt.Errorf("set thresholds: %w", err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.cur.Load().th == th {
		return nil
	}
	db.rebuild(th, nil)
	return nil
}

// Thresholds are the hash thresholds in force.
func (db *DB) Thresholds() Thresholds { return db.cur.Load().th }

// Get returns the policy installed under id.
func (db *DB) Get(id ID) (Policy, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	e := db.ids.get(id)
	if e == nil {
		return Policy{}, fmt.Errorf("get policy %#x: %w", id, ErrNotFound)
	}
	return e.Policy(), nil
}

// Stats is what `ip xfrm policy spdinfo` shows of the kernel's SPD.
type Stats struct {
	Policies   [numDirs]int // by Dir
	Hashed     int
	Buckets    int
	Thresholds Thresholds
}

// Stats counts the policies.
func (db *DB) Stats() Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	s := db.cur.Load()
	return Stats{Policies: db.perDir, Hashed: db.hashed, Buckets: len(s.buckets), Thresholds: s.th}
}

// Len is the number of policies.
func (db *DB) Len() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.ids.live
}

// publishList replaces the list of tag in s with l, and points ids at its
// entries, which are new copies.
func (db *DB) publishList(s *state, tag uint8, l []Entry) {
	for i := range l {
		db.ids.set(l[i].d.id, &l[i])
	}
	if len(l) == 0 {
		s.lists[tag].Store(nil)
		return
	}
	s.lists[tag].Store(&l)
}

// rebuild replaces the published state with a new one built from it with
// thresholds th, plus extra.
func (db *DB) rebuild(th Thresholds, extra []entryData) {
	s, hashed := build(th, db.cur.Load(), extra, db.ids.live, &db.ids)
	db.cur.Store(s)
	db.ver.Add(1)
	db.hashed, db.built, db.unlinked = hashed, hashed, 0
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Installed is a policy as Policies reports it.
type Installed struct {
	ID     ID
	Policy Policy
	// Hashed says the policy is in the hash table under the current
	// thresholds; otherwise it is in its direction and family's list.
	Hashed bool
}

// Policies lists the installed policies in the order lookups rank them:
// by direction, then priority, then insertion. It is for operators: it
// copies every policy, under the writers' lock.
func (db *DB) Policies() []Installed {
	db.mu.Lock()
	defer db.mu.Unlock()
	s := db.cur.Load()
	type item struct {
		Installed
		d entryData
	}
	items := make([]item, 0, db.ids.live)
	s.forEach(func(e *Entry) {
		items = append(items, item{Installed{ID: e.d.id, Policy: e.Policy(), Hashed: s.th.hashes(&e.d)}, e.d})
	})
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.Policy.Dir, b.Policy.Dir); c != 0 {
			return c
		}
		if a.d.before(&b.d) {
			return -1
		}
		return 1
	})
	out := make([]Installed, len(items))
	for i := range items {
		out[i] = items[i].Installed
	}
	return out
}
