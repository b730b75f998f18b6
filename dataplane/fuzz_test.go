package dataplane

import (
	"testing"

	"github.com/espx/espx/crypto"
)

// fuzzSAs are the inbound SAs FuzzDecap throws packets at, with their
// outbound twins to make valid packets.
type fuzzSA struct {
	out *OutboundSA
	in  *InboundSA
	v6  bool // outer family
}

func fuzzSAs(tb testing.TB) []fuzzSA {
	var sas []fuzzSA
	for _, c := range []SAConfig{
		{Transform: transforms[0].c, Src: gw4a, Dst: gw4b, ReplayWindow: 64},
		{Transform: transforms[4].c, Src: gw6a, Dst: gw6b, Encap: true, ESN: true, ReplayWindow: 4096},
		{Transform: transforms[2].c, Src: gw4a, Dst: gw4b, Mode: ModeTransport, Encap: true},
		{Transform: transforms[3].c, Src: gw6a, Dst: gw6b, Mode: ModeTransport, ESN: true, ReplayWindow: 64},
	} {
		c.SPI = 0x1000
		out, in := saPair(tb, c)
		sas = append(sas, fuzzSA{out, in, !c.Src.Is4()})
	}
	return sas
}

// FuzzDecap feeds decapsulation two kinds of input: raw outer packets, which
// exercise the parsers and the ICV check, and plaintexts that are sealed into
// valid ESP first, which reach the padding, trailer and inner packet checks
// that a forged packet never gets to. Nothing may panic, and a packet that
// passes must leave a well-formed inner packet inside the frame.
func FuzzDecap(f *testing.F) {
	sas := fuzzSAs(f)
	for i, sa := range sas {
		for _, n := range []int{0, 30, 200} {
			for _, inner := range [][]byte{udpPacket(host4a, host4b, n, 1), udpPacket(host6a, host6b, n, 2)} {
				if sa.out.mode == ModeTransport {
					inner = udpPacket(gw4a, gw4b, n, 0)
					if sa.v6 {
						inner = udpPacket(gw6a, gw6b, n, 0)
					}
				}
				f.Add(uint8(i), false, sealed(f, sa.out, inner))
				f.Add(uint8(i), true, append(inner, 0, 4))
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, seal bool, data []byte) {
		sa := sas[int(which)%len(sas)]
		if seal {
			data = sealInto(t, sa, data)
			if data == nil {
				return
			}
		}
		e := NewEngine(nil)
		fr := frameOf(data)
		d := e.Decap(sa.in, &fr)
		if d != DropNone {
			if e.C.Dropped(d) != 1 {
				t.Fatalf("%v not counted", d)
			}
			return
		}
		if fr.Off < 0 || fr.Len < ipv4MinLen || fr.Off+fr.Len > len(fr.Buf) {
			t.Fatalf("frame off %d len %d of %d", fr.Off, fr.Len, len(fr.Buf))
		}
		if _, d := parseInner(fr.Data()); d != DropNone {
			t.Fatalf("passed a packet whose inner header is bad: %x", fr.Data())
		}
	})
}

// sealInto wraps pt, padded with zeros to the transform's alignment, as the
// plaintext of a valid ESP packet of sa (tunnel or transport, UDP or not),
// or returns nil if it is too large for a test.
func sealInto(tb testing.TB, fs fuzzSA, pt []byte) []byte {
	sa := fs.out
	if len(pt) > 2000 {
		return nil
	}
	e := sa.esp
	pt = append(pt, make([]byte, (e.Align()-len(pt)%e.Align())%e.Align())...)
	if len(pt) == 0 {
		pt = make([]byte, e.Align())
	}
	seq, got := sa.reserve(1)
	if got == 0 {
		return nil
	}
	ipLen := ipv4MinLen
	if fs.v6 {
		ipLen = ipv6Len
	}
	espOff := ipLen
	if sa.encap {
		espOff += udpLen
	}
	n := espOff + crypto.HeaderLen + e.IVLen() + len(pt) + e.ICVLen()
	p := make([]byte, n)
	proto := uint8(protoESP)
	if sa.encap {
		proto = protoUDP
		putPorts(p[ipLen:], PortNATT, PortNATT)
		putUint16(p[ipLen+udpLenOff:], uint16(n-ipLen))
	}
	if fs.v6 {
		h := ipv6(p)
		h[0] = 6 << 4
		h.setPayloadLen(n - ipv6Len)
		h[ipv6NextOff] = proto
	} else {
		h := ipv4(p)
		h[0] = 0x45
		h.setTotalLen(n)
		h[ipv4ProtoOff] = proto
		h.setChecksum()
	}
	putUint32(p[espOff:], sa.spi)
	putUint32(p[espOff+4:], uint32(seq))
	copy(p[espOff+crypto.HeaderLen+e.IVLen():], pt)
	if err := e.Seal(crypto.NewScratch(), p, espOff, seq, sa.esn); err != nil {
		tb.Fatal(err)
	}
	return p
}
