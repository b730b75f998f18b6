package dataplane

import (
	"bytes"

	"github.com/espx/espx/crypto"
)

// Inbound is what ParseInbound learned of a received outer packet. Offsets
// are from the start of the packet (Frame.Off).
type Inbound struct {
	SPI    uint32
	Encap  bool // ESP in UDP (RFC 3948)
	espOff int  // the ESP header
	end    int  // the end of the IP packet, which may be short of the frame's
	ipLen  int  // the IP header and any IPv6 extension headers before ESP/UDP
	nhOff  int  // the byte that says ESP or UDP follows the IP headers
	v6     bool
}

// ParseInbound finds the ESP header of a packet addressed to this gateway,
// as ESP (protocol 50) or inside UDP to port 4500, and its SPI, by which
// the caller looks up the SA.
func ParseInbound(f *Frame, in *Inbound) Drop {
	p := f.Data()
	if len(p) < ipv4MinLen {
		return DropHdrError
	}
	*in = Inbound{}
	var proto uint8
	switch p[0] >> 4 {
	case 4:
		h := ipv4(p)
		hl, n := h.headerLen(), h.totalLen()
		if hl < ipv4MinLen || n < hl || n > len(p) {
			return DropHdrError
		}
		if h.isFragment() {
			return DropFragment
		}
		in.end, in.ipLen, in.nhOff, proto = n, hl, ipv4ProtoOff, h.proto()
	case 6:
		if len(p) < ipv6Len {
			return DropHdrError
		}
		n := ipv6Len + ipv6(p).payloadLen()
		if n > len(p) {
			return DropHdrError
		}
		hl, nhOff, d := walkV6(p[:n], true)
		if d != DropNone {
			return d
		}
		in.v6, in.end, in.ipLen, in.nhOff, proto = true, n, hl, nhOff, p[nhOff]
	default:
		return DropHdrError
	}
	in.espOff = in.ipLen
	switch proto {
	case protoESP:
	case protoUDP:
		if in.end-in.ipLen < udpLen {
			return DropHdrError
		}
		u := p[in.ipLen:]
		if uint16(u[2])<<8|uint16(u[3]) != PortNATT {
			return DropNotESP
		}
		ulen := int(u[udpLenOff])<<8 | int(u[udpLenOff+1])
		if ulen < udpLen || ulen > in.end-in.ipLen {
			return DropHdrError
		}
		in.end = in.ipLen + ulen
		in.Encap = true
		in.espOff += udpLen
		// RFC 3948 section 2.2: a zero where the SPI would be is the
		// non-ESP marker of IKE; a lone 0xff is a NAT keepalive.
		if in.end-in.espOff < 4 || espHdr(p[in.espOff:]).spi() == 0 {
			return DropNotESP
		}
	default:
		return DropNotESP
	}
	if in.end-in.espOff < crypto.HeaderLen {
		return DropHdrError
	}
	in.SPI = espHdr(p[in.espOff:]).spi()
	return DropNone
}

// DecapBatch verifies, decrypts and decapsulates frames[i], which
// ParseInbound described in ins[i], with sas[i], for every i. drops[i] says
// why a frame was dropped, or DropNone. It returns how many frames passed.
//
// The order is the one RFC 4303 section 3.4 gives: replay check, ICV and
// decryption, replay window update, then the padding and inner packet.
// A dropped frame's plaintext is never handed on.
func (e *Engine) DecapBatch(sas []*InboundSA, ins []Inbound, frames []Frame, drops []Drop) int {
	var pkts, bytes uint64
	for i := 0; i < len(frames); {
		sa := sas[i]
		j := i + 1
		for j < len(frames) && sas[j] == sa {
			j++
		}
		var runPkts, runBytes uint64
		for k := i; k < j; k++ {
			d := DropNoState
			if sa != nil {
				d = e.decap(sa, &frames[k], &ins[k])
			}
			drops[k] = d
			if d != DropNone {
				e.drop(d)
				if sa != nil {
					sa.Stats.dropped(d)
				}
				continue
			}
			runPkts++
			runBytes += uint64(frames[k].Len)
		}
		if runPkts > 0 {
			sa.Stats.touch(runPkts, runBytes, e.Now)
		}
		pkts += runPkts
		bytes += runBytes
		i = j
	}
	e.n.decapPackets += pkts
	e.n.decapBytes += bytes
	e.n.publish(e.C)
	return int(pkts)
}

// Decap parses one frame and processes it with sa; see DecapBatch. The
// caller has checked that sa is the SA for the frame's SPI.
func (e *Engine) Decap(sa *InboundSA, f *Frame) Drop {
	var in Inbound
	d := ParseInbound(f, &in)
	if d == DropNone && in.SPI != sa.spi {
		d = DropNoState
	}
	if d == DropNone {
		d = e.decap(sa, f, &in)
		sa.Stats.dropped(d)
	}
	if d != DropNone {
		e.drop(d)
	} else {
		sa.Stats.Packets.Add(1)
		sa.Stats.Bytes.Add(uint64(f.Len))
		e.n.decapPackets++
		e.n.decapBytes += uint64(f.Len)
	}
	e.n.publish(e.C)
	return d
}

func (e *Engine) decap(sa *InboundSA, f *Frame, in *Inbound) Drop {
	if in.Encap != sa.encap {
		return DropNoState
	}
	b := f.Buf
	espOff, end := f.Off+in.espOff, f.Off+in.end
	seq, d := sa.window.Check(espHdr(b[espOff:]).seq())
	if d != DropNone {
		return d
	}
	pt, err := sa.esp.Open(e.cs, b[:end], espOff, uint32(seq>>32), sa.esn)
	if err != nil {
		if err == crypto.ErrAuth {
			return DropAuthFailed
		}
		return DropHdrError
	}
	if d := sa.window.Update(seq); d != DropNone {
		return d
	}
	n := len(pt)
	padLen, nh := int(pt[n-2]), pt[n-1]
	if padLen+crypto.TrailerLen > n {
		return DropPadError
	}
	payload := pt[:n-crypto.TrailerLen-padLen]
	if !bytes.Equal(pt[len(payload):n-crypto.TrailerLen], padPattern[:padLen]) {
		return DropPadError
	}
	if nh == protoNone {
		return DropDummy
	}
	payloadOff := end - n - sa.esp.ICVLen() // where pt starts in b
	if sa.mode == ModeTransport {
		return decapTransport(f, in, payloadOff, len(payload), nh)
	}
	return decapTunnel(f, in, payload, payloadOff, nh)
}

// decapTunnel leaves the inner packet in the frame. Its length comes from
// its own header, which drops any TFC padding after it.
func decapTunnel(f *Frame, in *Inbound, payload []byte, payloadOff int, nh uint8) Drop {
	outer := f.Data()
	outerECN := outer[ipv4TOSOff] & ecnMask
	if in.v6 {
		outerECN = ipv6(outer).trafficClass() & ecnMask
	}
	var n int
	switch nh {
	case protoIPIP:
		if len(payload) < ipv4MinLen || payload[0]>>4 != 4 {
			return DropBadNextHeader
		}
		h := ipv4(payload)
		n = h.totalLen()
		if h.headerLen() < ipv4MinLen || n < h.headerLen() || n > len(payload) {
			return DropBadNextHeader
		}
		if outerECN == ecnCE {
			if h.tos()&ecnMask == ecnNotECT {
				return DropECN
			}
			h[ipv4TOSOff] |= ecnCE
			h.setChecksum()
		}
	case protoIPv6:
		if len(payload) < ipv6Len || payload[0]>>4 != 6 {
			return DropBadNextHeader
		}
		h := ipv6(payload)
		n = ipv6Len + h.payloadLen()
		if n > len(payload) {
			return DropBadNextHeader
		}
		if outerECN == ecnCE {
			tc := h.trafficClass()
			if tc&ecnMask == ecnNotECT {
				return DropECN
			}
			h.setTrafficClass(tc | ecnCE)
		}
	default:
		return DropBadNextHeader
	}
	f.Off, f.Len = payloadOff, n
	return DropNone
}

// decapTransport moves the IP header up to the payload and makes it name
// the payload's protocol.
func decapTransport(f *Frame, in *Inbound, payloadOff, payloadLen int, nh uint8) Drop {
	b := f.Buf
	start := payloadOff - in.ipLen
	copy(b[start:], b[f.Off:f.Off+in.ipLen])
	b[start+in.nhOff] = nh
	total := in.ipLen + payloadLen
	if in.v6 {
		ipv6(b[start:]).setPayloadLen(total - ipv6Len)
	} else {
		h := ipv4(b[start:])
		h.setTotalLen(total)
		h.setChecksum()
	}
	f.Off, f.Len = start, total
	return DropNone
}
