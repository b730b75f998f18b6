package spd

import (
	"cmp"
	"flag"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// xfrm parses a policy written as `ip xfrm policy` writes it, with src and
// dst in the packet's terms, so that the ip-xfrm(8) examples can be quoted
// as they are: "dir in src 10.24.1.1/32 dst 10.22.0.0/16 proto tcp sport
// 80 dport 1024-2047 priority 10 action allow". Missing parts default to
// proto any, priority 0, and protect with SA 1.
func xfrm(tb testing.TB, s string) Policy {
	tb.Helper()
	f := strings.Fields(s)
	p := Policy{Action: Protect, SA: 1}
	var src, dst netip.Prefix
	var sport, dport, icmpType, icmpCode PortRange
	for i := 0; i+1 < len(f); i += 2 {
		v := f[i+1]
		var err error
		switch f[i] {
		case "dir":
			p.Dir = map[string]Dir{"out": DirOut, "in": DirIn, "fwd": DirFwd}[v]
		case "src":
			src, err = netip.ParsePrefix(v)
		case "dst":
			dst, err = netip.ParsePrefix(v)
		case "proto":
			p.Proto = map[string]uint8{"any": 0, "icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "sctp": 132}[v]
		case "sport":
			sport = parseRange(tb, v)
		case "dport":
			dport = parseRange(tb, v)
		case "type":
			icmpType = parseRange(tb, v)
		case "code":
			icmpCode = parseRange(tb, v)
		case "priority":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			p.Priority = uint32(n)
		case "action":
			p.Action = map[string]Action{"protect": Protect, "allow": Bypass, "block": Discard}[v]
		case "sa":
			p.SA, err = strconv.ParseUint(v, 0, 64)
		default:
			tb.Fatalf("xfrm %q: unknown word %q", s, f[i])
		}
		if err != nil {
			tb.Fatalf("xfrm %q: %v", s, err)
		}
	}
	if strings.HasSuffix(s, " trap") {
		p.Trap = true
	}
	p.Local, p.Remote, p.LocalPorts, p.RemotePorts = src, dst, sport, dport
	if p.Dir != DirOut {
		p.Local, p.Remote, p.LocalPorts, p.RemotePorts = dst, src, dport, sport
	}
	if icmpType != (PortRange{}) || icmpCode != (PortRange{}) {
		p.LocalPorts, p.RemotePorts = icmpType, icmpCode
	}
	return p
}

func parseRange(tb testing.TB, s string) PortRange {
	tb.Helper()
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil {
		tb.Fatalf("port range %q", s)
	}
	return Ports(uint16(a), uint16(b))
}

// key builds a packet key from "src dst [proto [sport dport]]".
func key(tb testing.TB, s string) Key {
	tb.Helper()
	f := strings.Fields(s)
	k := Key{Src: netip.MustParseAddr(f[0]), Dst: netip.MustParseAddr(f[1])}
	if len(f) > 2 {
		n, _ := strconv.Atoi(f[2])
		k.Proto = uint8(n)
	}
	if len(f) > 4 {
		a, _ := strconv.Atoi(f[3])
		b, _ := strconv.Atoi(f[4])
		k.SrcPort, k.DstPort = uint16(a), uint16(b)
	}
	return k
}

func newDB(tb testing.TB, th Thresholds) *DB {
	tb.Helper()
	db, err := New(th)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustInsert(tb testing.TB, db *DB, p Policy) ID {
	tb.Helper()
	id, err := db.Insert(p)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// lookupID is the ID of what Lookup returns, 0 for nothing.
func lookupID(db *DB, dir Dir, k Key) ID {
	if e := db.Lookup(dir, &k); e != nil {
		return e.ID()
	}
	return 0
}

// isHashed reports where the database keeps policy id.
func isHashed(tb testing.TB, db *DB, id ID) bool {
	tb.Helper()
	db.mu.Lock()
	defer db.mu.Unlock()
	e := db.ids.get(id)
	if e == nil {
		tb.Fatalf("policy %#x not installed", id)
	}
	s := db.cur.Load()
	for n := s.buckets[s.bucketOf(&e.d)].Load(); n != nil; n = n.next.Load() {
		if n == e {
			return true
		}
	}
	l := s.list(e.d.tag())
	for i := range l {
		if &l[i] == e {
			return false
		}
	}
	tb.Fatalf("policy %d is neither hashed nor listed", id)
	return false
}

// reference is the specification of Lookup: every policy, kept in
// (priority, insertion) order, scanned from the start, with a match
// written independently of the package's, on netip's own Prefix.Contains.
type reference struct {
	ps  []refPolicy
	seq int
}

type refPolicy struct {
	id  ID
	seq int
	p   Policy
}

// insert adds policy p under id; policies must be added in the order they
// were inserted into the database.
func (r *reference) insert(id ID, p Policy) {
	r.seq++
	rp := refPolicy{id, r.seq, p}
	at, _ := slices.BinarySearchFunc(r.ps, rp, compareRef)
	r.ps = slices.Insert(r.ps, at, rp)
}

func (r *reference) delete(id ID) {
	r.ps = slices.DeleteFunc(r.ps, func(rp refPolicy) bool { return rp.id == id })
}

func compareRef(a, b refPolicy) int {
	if c := cmp.Compare(a.p.Priority, b.p.Priority); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

func (r *reference) lookup(dir Dir, k Key) ID {
	for _, rp := range r.ps {
		if refMatch(&rp.p, dir, k) {
			return rp.id
		}
	}
	return 0
}

func refMatch(p *Policy, dir Dir, k Key) bool {
	if p.Dir != dir {
		return false
	}
	local, remote, lport, rport := k.Src, k.Dst, k.SrcPort, k.DstPort
	if dir != DirOut {
		local, remote, lport, rport = k.Dst, k.Src, k.DstPort, k.SrcPort
	}
	if k.Proto == 1 || k.Proto == 58 {
		lport, rport = k.SrcPort, k.DstPort
	}
	inRange := func(r PortRange, x uint16) bool { return r == PortRange{} || r.Lo() <= x && x <= r.Hi() }
	return p.Local.Contains(local) && p.Remote.Contains(remote) &&
		(p.Proto == 0 || p.Proto == k.Proto) &&
		inRange(p.LocalPorts, lport) && inRange(p.RemotePorts, rport)
}

// gen makes random policies and keys that overlap a lot: addresses come
// from a few bases, prefix lengths cluster around the thresholds, and
// priorities from a handful of values, so that equal priorities, nested
// prefixes and bucket collisions are the rule.
type gen struct {
	rng *rand.Rand
	th  Thresholds
}

var (
	genBases4 = []netip.Addr{
		netip.MustParseAddr("10.22.0.0"), netip.MustParseAddr("10.22.1.0"),
		netip.MustParseAddr("10.24.1.0"), netip.MustParseAddr("192.0.2.0"),
	}
	genBases6 = []netip.Addr{
		netip.MustParseAddr("3ffe:304:124:2200::"), netip.MustParseAddr("3ffe:304:124:2401::"),
		netip.MustParseAddr("2001:db8::"), netip.MustParseAddr("2001:db8:0:1::"),
	}
	genProtos = []uint8{0, 0, 0, protoTCP, protoUDP, protoSCTP, protoICMP, protoICMPv6, 50}
	// Few priorities, so that ties are common, and the extremes.
	genPriorities = []uint32{0, 1, 2, 1 << 31, ^uint32(0)}
)

func (g *gen) thresholds() Thresholds {
	pick := func(full int) uint8 {
		switch g.rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return uint8(full)
		}
		return uint8(g.rng.IntN(full + 1))
	}
	return Thresholds{pick(32), pick(32), pick(128), pick(128)}
}

// prefixLen picks a length near the threshold t, or anywhere.
func (g *gen) prefixLen(t uint8, full int) int {
	if g.rng.IntN(3) == 0 {
		return g.rng.IntN(full + 1)
	}
	return min(max(int(t)+g.rng.IntN(9)-4, 0), full)
}

func (g *gen) prefix(v4 bool, t uint8) netip.Prefix {
	bases, full := genBases6, 128
	if v4 {
		bases, full = genBases4, 32
	}
	a := g.within(netip.PrefixFrom(bases[g.rng.IntN(len(bases))], full-8))
	return netip.PrefixFrom(a, g.prefixLen(t, full)) // not masked: Insert must mask
}

// within is a random address inside p.
func (g *gen) within(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if g.rng.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (g *gen) ports(proto uint8) PortRange {
	max := 0xffff
	switch proto {
	case protoICMP, protoICMPv6:
		max = 0xff
	case protoTCP, protoUDP, protoSCTP:
	default:
		return PortRange{}
	}
	if g.rng.IntN(2) == 0 {
		return PortRange{}
	}
	lo := g.rng.IntN(8) * (max / 8)
	return Ports(uint16(lo), uint16(min(lo+g.rng.IntN(max/4), max)))
}

func (g *gen) policy() Policy {
	v4 := g.rng.IntN(2) == 0
	lt, rt := g.th.V6Local, g.th.V6Remote
	if v4 {
		lt, rt = g.th.V4Local, g.th.V4Remote
	}
	p := Policy{
		Dir:      Dir(g.rng.IntN(int(numDirs))),
		Priority: genPriorities[g.rng.IntN(len(genPriorities))],
		Action:   Action(1 + g.rng.IntN(3)),
		SA:       g.rng.Uint64(),
	}
	p.Local, p.Remote = g.prefix(v4, lt), g.prefix(v4, rt)
	p.Proto = genProtos[g.rng.IntN(len(genProtos))]
	p.LocalPorts, p.RemotePorts = g.ports(p.Proto), g.ports(p.Proto)
	p.Trap = p.Action == Protect && g.rng.IntN(2) == 0
	return p
}

// key is a random packet: half the time inside a random policy of ps in
// its direction, otherwise around the same bases.
func (g *gen) key(ps []refPolicy) (Dir, Key) {
	if len(ps) > 0 && g.rng.IntN(2) == 0 {
		p := ps[g.rng.IntN(len(ps))].p
		local, remote := g.within(p.Local), g.within(p.Remote)
		k := Key{Src: local, Dst: remote, Proto: p.Proto}
		if k.Proto == 0 {
			k.Proto = genProtos[g.rng.IntN(len(genProtos))]
		}
		lp, rp := g.port(p.LocalPorts), g.port(p.RemotePorts)
		k.SrcPort, k.DstPort = lp, rp
		if p.Dir != DirOut {
			k.Src, k.Dst = remote, local
			if k.Proto != protoICMP && k.Proto != protoICMPv6 {
				k.SrcPort, k.DstPort = rp, lp
			}
		}
		return p.Dir, k
	}
	v4 := g.rng.IntN(2) == 0
	k := Key{
		Src:     g.within(g.prefix(v4, 0)),
		Dst:     g.within(g.prefix(v4, 0)),
		Proto:   genProtos[g.rng.IntN(len(genProtos))],
		SrcPort: uint16(g.rng.IntN(0x10000)),
		DstPort: uint16(g.rng.IntN(0x10000)),
	}
	return Dir(g.rng.IntN(int(numDirs))), k
}

// port is a port inside r most of the time, and sometimes just outside.
func (g *gen) port(r PortRange) uint16 {
	if r == (PortRange{}) {
		return uint16(g.rng.IntN(0x10000))
	}
	switch g.rng.IntN(8) {
	case 0:
		return r.Lo() - 1
	case 1:
		return r.Hi() + 1
	}
	return r.Lo() + uint16(g.rng.IntN(int(r.Hi()-r.Lo())+1))
}

var seedFlag = flag.Uint64("spd.seed", 0, "seed for the randomized tests (0: from the clock)")

// newRand is a random source whose seed the test logs, so that a failure
// can be replayed with -spd.seed.
func newRand(tb testing.TB) *rand.Rand {
	tb.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	tb.Logf("seed %d (replay with -spd.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
}

// pairPolicy is the i-th of up to 2^20 site-to-site policies, each between
// its own pair of /24s: local 10.x.y.0/24, remote 172.w.z.0/24, with
// w, x, y and z from i. With thresholds of 24 and 24 all of them hash, each
// to its own key.
func pairPolicy(i int) Policy {
	return Policy{
		Dir: DirOut,
		Selector: Selector{
			Local:  netip.PrefixFrom(pairLocal(i, 0), 24),
			Remote: netip.PrefixFrom(pairRemote(i, 0), 24),
		},
		Priority: 100,
		Action:   Protect,
		SA:       uint64(i),
	}
}

// pairKey is an outbound packet between hosts of pair i; host picks them.
func pairKey(i, host int) Key {
	return Key{
		Src:     pairLocal(i, 1+host%254),
		Dst:     pairRemote(i, 1+(host/254)%254),
		Proto:   protoTCP,
		SrcPort: uint16(32768 + host%28000),
		DstPort: 443,
	}
}

func pairLocal(i, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(host)})
}

func pairRemote(i, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i) ^ byte(i>>8), byte(host)})
}
