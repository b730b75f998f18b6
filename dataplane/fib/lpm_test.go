package fib

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// randAddr returns a random address of the family.
func randAddr(r *rand.Rand, v4 bool) netip.Addr {
	if v4 {
		var b [4]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return netip.AddrFrom16(b)
}

// randIn returns a random address inside p.
func randIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	a := randAddr(r, p.Addr().Is4())
	pb, ab := p.Addr().AsSlice(), a.AsSlice()
	for i := range pb {
		keep := min(max(p.Bits()-8*i, 0), 8)
		m := byte(0xff << (8 - keep))
		ab[i] = pb[i]&m | ab[i]&^m
	}
	out, _ := netip.AddrFromSlice(ab)
	return out
}

// randPrefixes returns n distinct masked prefixes whose lengths are drawn
// from lens; half of them are carved out of earlier ones, so that prefixes
// nest the way routes do and most addresses match several of them.
func randPrefixes(r *rand.Rand, v4 bool, n int, lens []int) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for len(out) < n {
		l := lens[r.IntN(len(lens))]
		var a netip.Addr
		if len(out) > 0 && r.IntN(2) == 0 {
			a = randIn(r, out[r.IntN(len(out))])
		} else {
			a = randAddr(r, v4)
		}
		p := netip.PrefixFrom(a, l).Masked()
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// linearLPM is the reference: the index of the longest prefix in ps that
// contains a, by scanning them all.
func linearLPM(ps []netip.Prefix, a netip.Addr) int32 {
	best, bits := int32(-1), -1
	for i, p := range ps {
		if p.Contains(a) && p.Bits() > bits {
			best, bits = int32(i), p.Bits()
		}
	}
	return best
}

func buildFromPrefixes(ps []netip.Prefix) lpm {
	es := make([]lpmEntry, len(ps))
	for i, p := range ps {
		es[i] = lpmEntry{key: keyOf(p.Addr()), plen: uint8(p.Bits()), val: int32(i)}
	}
	return buildLPM(es)
}

// The LPM agrees with a linear scan, for both families, for tables from
// empty to thousands of prefixes, with lengths spread over the whole range
// or bunched as in real tables, for addresses inside the prefixes and
// anywhere.
func TestLPMMatchesLinearScan(t *testing.T) {
	all4, all6 := make([]int, 33), make([]int, 129)
	for i := range all4 {
		all4[i] = i
	}
	for i := range all6 {
		all6[i] = i
	}
	shapes := []struct {
		name   string
		v4     bool
		lens   []int
		counts []int
	}{
		{"v4/all-lengths", true, all4, []int{0, 1, 2, 10, 100, 3000}},
		{"v4/typical", true, []int{0, 8, 16, 22, 24, 32}, []int{1, 10, 1000}},
		{"v4/one-length", true, []int{24}, []int{1, 500}},
		{"v6/all-lengths", false, all6, []int{0, 1, 2, 10, 100, 3000}},
		{"v6/typical", false, []int{0, 32, 48, 56, 64, 127, 128}, []int{1, 10, 1000}},
		{"v6/long", false, []int{65, 96, 100, 120, 128}, []int{10, 500}},
	}
	for _, s := range shapes {
		for _, n := range s.counts {
			t.Run(fmt.Sprintf("%s/%d", s.name, n), func(t *testing.T) {
				seed := uint64(n)*7919 + uint64(len(s.lens))
				r := rand.New(rand.NewPCG(seed, 1))
				ps := randPrefixes(r, s.v4, n, s.lens)
				tab := buildFromPrefixes(ps)
				queries := 20000
				if raceEnabled {
					queries = 2000 // the reference scan is slow under -race
				}
				for range queries {
					var a netip.Addr
					if len(ps) > 0 && r.IntN(4) != 0 {
						a = randIn(r, ps[r.IntN(len(ps))])
					} else {
						a = randAddr(r, s.v4)
					}
					want := linearLPM(ps, a)
					if got := tab.lookup(keyOf(a)); got != want {
						gs, ws := "none", "none"
						if got >= 0 {
							gs = ps[got].String()
						}
						if want >= 0 {
							ws = ps[want].String()
						}
						t.Fatalf("seed %d: lookup(%v) = %s, want %s", seed, a, gs, ws)
					}
				}
			})
		}
	}
}

func TestMasks(t *testing.T) {
	for l := 0; l <= 128; l++ {
		hi, lo := masks(l)
		p := netip.PrefixFrom(netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), l).Masked()
		k := keyOf(p.Addr())
		if hi != k.hi || lo != k.lo {
			t.Errorf("masks(%d) = %#x %#x, want %#x %#x", l, hi, lo, k.hi, k.lo)
		}
	}
}

// The hash spreads structured keys (consecutive prefixes, which differ in
// a few bits in the middle of the address) as well as random ones: with
// the table at most half full, linear probing finds an entry in about 1.5
// probes on average if the hash is uniform.
func TestLPMHashSpread(t *testing.T) {
	seq := func(base string, bits, step, n int) []netip.Prefix {
		out := make([]netip.Prefix, n)
		a := netip.MustParseAddr(base)
		for i := range out {
			out[i] = netip.PrefixFrom(a, bits)
			for range step {
				a = a.Next()
			}
		}
		return out
	}
	cases := map[string][]netip.Prefix{
		"v4 /32 hosts":   seq("10.0.0.0", 32, 1, 20000),
		"v4 /24s":        seq("10.0.0.0", 24, 256, 20000),
		"v6 /128 hosts":  seq("2001:db8::", 128, 1, 20000),
		"v6 /127 pairs":  seq("2001:db8::", 127, 2, 20000),
		"v4 random /24s": randPrefixes(rand.New(rand.NewPCG(1, 1)), true, 20000, []int{24}),
	}
	// IPv6 /64s step in the high word, which Next cannot reach quickly.
	var v64 []netip.Prefix
	for i := range 20000 {
		v64 = append(v64, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 4: byte(i >> 16), 5: byte(i >> 8), 6: byte(i)}), 56))
	}
	cases["v6 /56s"] = v64
	for name, ps := range cases {
		tab := buildFromPrefixes(ps)
		var total, worst int
		for i, s := range tab.slots {
			if s.plen1 == 0 {
				continue
			}
			home := hash128(s.hi, s.lo, uint64(s.plen1-1)) >> tab.shift
			d := int((uint64(i)-home)&tab.mask) + 1
			total += d
			worst = max(worst, d)
		}
		mean := float64(total) / float64(len(ps))
		t.Logf("%s: mean %.2f worst %d", name, mean, worst)
		if mean > 2 || worst > 64 {
			t.Errorf("%s: %.2f probes on average, %d at worst", name, mean, worst)
		}
	}
}
