package spd

import (
	"net/netip"
	"testing"
)

// FuzzLookup decodes the input into thresholds, a few policies, a delete
// and a change of thresholds, and packets, and compares every lookup with
// the reference scan. Addresses come from a few bases with one byte of
// variation, so that policies and packets meet often.
func FuzzLookup(f *testing.F) {
	f.Add([]byte{16, 24, 56, 64, 3,
		0x00, 0, 0x20, 20, 1, 0x10, 24, 0, 0, 0, 1,
		0x02, 1, 0x05, 32, 0, 0x10, 16, 3, 1, 8, 8,
		0x01, 2, 0x30, 60, 2, 0x01, 64, 1, 0, 0, 2,
		0x00, 0, 0x20, 0, 0x10, 6, 80, 143})
	f.Add([]byte{0, 0, 0, 0, 2,
		0x00, 0, 0x20, 20, 1, 0x10, 24, 0, 0, 0, 1,
		0x00, 0, 0x20, 20, 1, 0x10, 24, 0, 0, 0, 1,
		0xff, 32, 32, 128, 128,
		0x00, 0, 0x20, 0, 0x10, 6, 80, 143})
	f.Add([]byte("a longer input of arbitrary bytes that decodes to something or other"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &fuzzReader{b: data}
		db, err := New(r.thresholds())
		if err != nil {
			t.Fatal(err)
		}
		var ref reference
		var ids []ID
		for range r.byte() % 24 {
			p := r.policy()
			id, err := db.Insert(p)
			if err != nil {
				continue
			}
			ref.insert(id, p)
			ids = append(ids, id)
		}
		if op := r.byte(); op&1 != 0 && len(ids) > 0 {
			id := ids[int(op>>1)%len(ids)]
			if err := db.Delete(id); err != nil {
				t.Fatal(err)
			}
			ref.delete(id)
		}
		if op := r.byte(); op == 0xff {
			if err := db.SetThresholds(r.thresholds()); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 64 && r.more(); i++ {
			dir, k := r.key()
			if got, want := lookupID(db, dir, k), ref.lookup(dir, k); got != want {
				t.Fatalf("%v %v: %v %+v: got %s, want %s", db.Thresholds(), ref.ps, dir, k,
					describe(db, got), describe(db, want))
			}
		}
	})
}

type fuzzReader struct{ b []byte }

func (r *fuzzReader) more() bool { return len(r.b) > 0 }

func (r *fuzzReader) byte() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzReader) thresholds() Thresholds {
	return Thresholds{r.byte() % 33, r.byte() % 33, r.byte() % 129, r.byte() % 129}
}

// addr is one of four bases of the family with its last byte varied, or
// with the top byte's high bit flipped, far from everything.
func (r *fuzzReader) addr(v4 bool) netip.Addr {
	c := r.byte()
	b := genBases6[c&3].As16()
	if v4 {
		b4 := genBases4[c&3].As4()
		b4[3] = r.byte()
		if c&4 != 0 {
			b4[0] ^= 0x80
		}
		return netip.AddrFrom4(b4)
	}
	b[15] = r.byte()
	if c&4 != 0 {
		b[0] ^= 0x80
	}
	return netip.AddrFrom16(b)
}

// policy reads a flags byte (family, direction, action, trap), two
// prefixes, a protocol and two port ranges; invalid ones are possible and
// are refused by both sides alike.
func (r *fuzzReader) policy() Policy {
	fl := r.byte()
	v4 := fl&1 == 0
	full := uint8(128)
	if v4 {
		full = 32
	}
	p := Policy{Dir: Dir(fl >> 1 & 3), Action: Action(fl >> 3 & 3), Trap: fl&0x20 != 0}
	p.Priority = uint32(r.byte() % 4)
	p.Local = netip.PrefixFrom(r.addr(v4), int(r.byte()%(full+1)))
	p.Remote = netip.PrefixFrom(r.addr(v4), int(r.byte()%(full+1)))
	p.Proto = genProtos[int(r.byte())%len(genProtos)]
	p.LocalPorts = r.ports()
	p.RemotePorts = r.ports()
	p.SA = uint64(r.byte())
	return p
}

func (r *fuzzReader) ports() PortRange {
	c := r.byte()
	if c == 0 {
		return PortRange{}
	}
	return Ports(uint16(c), uint16(c)+uint16(r.byte()))
}

func (r *fuzzReader) key() (Dir, Key) {
	fl := r.byte()
	v4 := fl&1 == 0
	k := Key{Src: r.addr(v4), Dst: r.addr(v4)}
	k.Proto = genProtos[int(r.byte())%len(genProtos)]
	k.SrcPort, k.DstPort = uint16(r.byte()), uint16(r.byte())
	return Dir(fl >> 1 % 3), k
}
