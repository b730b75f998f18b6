// Package spd is the security policy database of espx (RFC 4301 section
// 4.4.1): for each packet, whether it is protected and by which SA, passed
// in the clear, or dropped.
//
// # Policies and lookups
//
// A [Policy] has a direction, a [Selector] (local and remote prefixes, IP
// protocol, ports, or ICMP type and code), a priority and an [Action]:
// protect with an SA or SA template, bypass, or discard. A protect policy
// can be a trap: a packet that matches it while it has no SA raises an
// acquire. [DB.Lookup] takes a direction and a packet's [Key] and returns
// the matching policy with the lowest priority value, and among equal
// priorities the one inserted first: exactly the policy that a scan of all
// policies in (priority, insertion) order finds first, which is how the
// tests specify it.
//
// Selectors are written from the gateway's side, keys in the packet's: an
// outbound lookup matches the packet's source against the local prefix,
// an inbound or forward lookup its destination. The data plane looks up
// outbound packets before encrypting them; inbound policies check the
// inner packet after decryption (it must match a protect policy of the SA
// it came through) and every cleartext arrival (bypass or discard).
//
//	           Lookup(dir, key)
//	                  │
//	      ┌───────────┴────────────┐ both read from one published state
//	      ▼                        ▼
//	hash table                unhashed list of (dir, family)
//	bucket of (dir, family,   entries in (priority, insertion)
//	 local/L, remote/R)       order, scanned while they can
//	chain in (priority,       still beat the bucket's match
//	 insertion) order:
//	 first full match
//
// # Hash table and list
//
// The thresholds ([Thresholds], `sp-hash-ipv4 local L remote R` and
// `sp-hash-ipv6 ...`, the kernel's `ip xfrm policy set hthresh4/hthresh6`)
// decide where a policy lives: if its local prefix is at least L bits and
// its remote prefix at least R bits, in the hash table, keyed on its
// direction, family and the high-order L and R bits of its addresses;
// otherwise in the list of its direction and family. Every hashed policy
// that can match a packet is then in the bucket of the packet's own
// addresses cut to L and R bits, so a lookup reads one bucket and the part
// of one list that comes before the bucket's match in priority order. With
// thresholds that suit the configuration (site-to-site policies between
// prefixes of at least L and R bits) the list holds only the few broad
// policies, and a lookup does the same work at ten policies and at a
// million (though not with the same cache misses: see Costs).
// Policies with shorter prefixes than the thresholds, or thresholds longer
// than the policies' prefixes, make the list long, and then every lookup
// pays for it: the list-only benchmarks show the linear cost it replaces.
// Broad policies that should rarely win are best given priorities behind
// the hashed ones, where a lookup never scans them.
//
// Buckets are chains of entries linked through atomic pointers, not
// arrays: a bucket head and its first entry are two memory loads, where a
// bucket array would be three (head, slice, element), and an insert or
// delete is one pointer store, with no copy of the bucket. The lists are
// immutable arrays, copied on every change: they are meant to be short,
// and a lookup scans them as flat memory.
//
// # Concurrency
//
// Lookups take no lock and never allocate. Writers (Insert, InsertBatch,
// Delete, SetThresholds) serialize on a mutex. Every change becomes visible
// in one atomic store: linking or unlinking one entry of a chain, or
// replacing one list, or replacing the whole state. The whole state is
// replaced when the table grows or shrinks, when the thresholds change and
// by a bulk insert: the writer builds a complete new state while lookups
// go on in the old one, then publishes it. The thresholds live in the
// state, so a lookup never hashes with new thresholds into an old table.
//
// A lookup reads two things a writer may change, a bucket and a list, so
// two changes could fall between its two reads. Writers count the changes
// they publish, and a lookup that sees the count move while it reads reads
// again: the answer of every lookup is the database's answer at one
// instant during the call (see [DB.Lookup]). This is what makes a
// make-before-break replacement of a policy safe: no lookup sees the old
// policy deleted but the new one not yet inserted.
//
// Deleted entries are left to the garbage collector, which frees them once
// no reader holds them: no grace periods, no reference counts. An [Entry]
// that a lookup returned stays valid and unchanged after its policy is
// deleted.
//
// # Costs
//
// A hashed Insert or Delete costs a walk of one bucket; the table doubles
// when it holds more than one policy per two buckets and shrinks when it
// holds fewer than one per eight, each time by a rebuild, so the cost per
// change is O(1) over time. An unhashed Insert or Delete copies its list.
// InsertBatch and SetThresholds cost O(all policies): a rebuild sorts the
// hashed entries by bucket into one contiguous slab, so that a bucket's
// chain is a run of neighbouring entries. When half the entries of the
// last slab have been deleted it is rebuilt, so that deleted entries do
// not keep it alive.
//
// An entry is 80 bytes, a bucket 8 (two to eight per policy), and a slot of
// the ID index that Delete uses ([ID] is a generational slot number, not a
// map key) 16: about 113 bytes per hashed policy in all at a million,
// which bench/RESULTS.md has measured.
//
// [DB.LookupBatch] looks up a batch of keys, the way workers take packets.
// In a table larger than the caches each lookup is two or three dependent
// cache misses (bucket head, entry, and the next entry when the first is
// another policy's). A batch takes each step for all its keys before the
// next and prefetches the lines of the next step first, so that the misses
// of its keys are all in flight together: a batch costs about the memory
// traffic of its keys, not the sum of their latencies. A single Lookup
// cannot hide its latency that way. [DB.LookupBatchStats] also counts
// where the answers came from (hash table or list) and how much of the
// lists it scanned, for the operator to judge the thresholds by;
// [DB.Policies] lists the policies in lookup order, each with where it is
// kept.
package spd
