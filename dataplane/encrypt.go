package dataplane

import "github.com/espx/espx/crypto"

// EncapBatch protects frames[i] with sas[i] in place, for every i, and
// records in drops[i] why a frame was dropped or DropNone. Consecutive frames
// of one SA take their sequence numbers in one reservation. It returns how
// many frames were protected. The three slices have the same length.
//
// Each frame holds the IP packet to protect. After a tunnel-mode
// encapsulation it holds the outer IP packet; transport mode inserts the ESP
// header after the packet's own IP header.
func (e *Engine) EncapBatch(sas []*OutboundSA, frames []Frame, drops []Drop) int {
	var pkts, bytes uint64
	for i := 0; i < len(frames); {
		sa := sas[i]
		j := i + 1
		for j < len(frames) && sas[j] == sa {
			j++
		}
		if sa == nil {
			for k := i; k < j; k++ {
				drops[k] = DropNoState
				e.drop(DropNoState)
			}
			i = j
			continue
		}
		first, got := sa.reserve(j - i)
		var runPkts, runBytes uint64
		for k := i; k < j; k++ {
			if k-i >= got {
				drops[k] = DropSeqOverflow
				e.drop(DropSeqOverflow)
				continue
			}
			n, d := e.encap(sa, &frames[k], first+uint64(k-i))
			drops[k] = d
			if d != DropNone {
				e.drop(d)
				continue
			}
			runPkts++
			runBytes += uint64(n)
		}
		if runPkts > 0 {
			sa.Stats.touch(runPkts, runBytes, e.Now)
		}
		pkts += runPkts
		bytes += runBytes
		i = j
	}
	e.n.encapPackets += pkts
	e.n.encapBytes += bytes
	e.n.publish(e.C)
	return int(pkts)
}

// Encap protects one frame with sa; see EncapBatch.
func (e *Engine) Encap(sa *OutboundSA, f *Frame) Drop {
	first, got := sa.reserve(1)
	if got == 0 {
		e.drop(DropSeqOverflow)
		e.n.publish(e.C)
		return DropSeqOverflow
	}
	n, d := e.encap(sa, f, first)
	if d != DropNone {
		e.drop(d)
	} else {
		sa.Stats.Packets.Add(1)
		sa.Stats.Bytes.Add(uint64(n))
		e.n.encapPackets++
		e.n.encapBytes += uint64(n)
	}
	e.n.publish(e.C)
	return d
}

// innerInfo is what encapsulation needs to know of the packet it protects.
type innerInfo struct {
	len int   // IP packet length from its header; the frame may be longer
	tos uint8 // IPv4 TOS or IPv6 traffic class
	df  bool
	v6  bool
}

func parseInner(data []byte) (innerInfo, Drop) {
	if len(data) < ipv4MinLen {
		return innerInfo{}, DropHdrError
	}
	switch data[0] >> 4 {
	case 4:
		h := ipv4(data)
		hl, n := h.headerLen(), h.totalLen()
		if hl < ipv4MinLen || n < hl || n > len(data) {
			return innerInfo{}, DropHdrError
		}
		return innerInfo{len: n, tos: h.tos(), df: h.flagsFrag()&ipv4FlagDF != 0}, DropNone
	case 6:
		if len(data) < ipv6Len {
			return innerInfo{}, DropHdrError
		}
		h := ipv6(data)
		n := ipv6Len + h.payloadLen()
		if n > len(data) {
			return innerInfo{}, DropHdrError
		}
		return innerInfo{len: n, tos: h.trafficClass(), df: true, v6: true}, DropNone
	}
	return innerInfo{}, DropHdrError
}

// trailer writes TFC padding, the RFC 4303 section 2.4 padding 1, 2, 3, ...,
// pad length and next header after the payload's n bytes in t, and returns
// the plaintext length.
func trailer(t []byte, n, body, align int, nh uint8) int {
	padLen := (align - (body+crypto.TrailerLen)%align) % align
	ptLen := body + padLen + crypto.TrailerLen
	if body > n {
		clear(t[n:body])
	}
	copy(t[body:], padPattern[:padLen])
	t[ptLen-2] = byte(padLen)
	t[ptLen-1] = nh
	return ptLen
}

// padPattern is the padding RFC 4303 section 2.4 defines: 1, 2, 3, ...
var padPattern = func() (p [255]byte) {
	for i := range p {
		p[i] = byte(i + 1)
	}
	return p
}()

// ptLenFor is the plaintext length trailer will produce for a body.
func ptLenFor(body, align int) int {
	return (body + crypto.TrailerLen + align - 1) / align * align
}

// encap protects one frame with sequence number seq and returns the
// plaintext length it carried.
func (e *Engine) encap(sa *OutboundSA, f *Frame, seq uint64) (int, Drop) {
	in, d := parseInner(f.Data())
	if d != DropNone {
		return 0, d
	}
	if sa.mode == ModeTransport {
		return in.len, e.encapTransport(sa, f, in, seq)
	}
	nh := uint8(protoIPIP)
	if in.v6 {
		nh = protoIPv6
	}
	body := in.len
	if sa.tfc > in.len {
		// TFC padding is best effort: it never costs a packet, so it
		// stops where the frame's tailroom does.
		room := len(f.Buf) - f.Off - sa.esp.ICVLen() - crypto.TrailerLen - (sa.esp.PadTo() - 1)
		body = max(in.len, min(sa.tfc, room))
	}
	ptLen := ptLenFor(body, sa.esp.PadTo())
	pre := sa.tmplLen + 4 + sa.esp.IVLen() // outer IP [UDP] SPI seq IV
	post := ptLen - in.len + sa.esp.ICVLen()
	if f.Off < pre || len(f.Buf)-f.Off-in.len < post {
		return 0, DropNoRoom
	}
	b := f.Buf
	start, end := f.Off-pre, f.Off+in.len+post
	trailer(b[f.Off:], in.len, body, sa.esp.PadTo(), nh)

	copy(b[start:], sa.tmpl[:sa.tmplLen])
	putUint32(b[start+sa.tmplLen:], uint32(seq))
	total := end - start
	tos := encapECN(in.tos)
	if sa.setDSCP {
		tos |= sa.dscp << 2
	} else {
		tos |= in.tos &^ ecnMask
	}
	if sa.v6 {
		h := ipv6(b[start:])
		h.setTrafficClass(tos)
		h.setPayloadLen(total - ipv6Len)
	} else {
		h := ipv4(b[start:])
		h[ipv4TOSOff] = tos
		h.setTotalLen(total)
		// RFC 6864: the ID only has to be unique for fragments; the
		// sequence number makes it so without shared state.
		id := uint16(seq)
		putUint16(h[ipv4IDOff:], id)
		var flags uint16
		if in.df {
			flags = ipv4FlagDF
		}
		putUint16(h[ipv4FlagsOff:], flags)
		// The template's sum covers every other field.
		acc := sa.csumBase + uint64(tos) + uint64(total) + uint64(id) + uint64(flags)
		putUint16(h[ipv4CsumOff:], ^fold(acc))
	}
	espOff := start + sa.ipLen
	if sa.encap {
		espOff += udpLen
		putUint16(b[start+sa.ipLen+udpLenOff:], uint16(total-sa.ipLen))
		putUint16(b[start+sa.ipLen+udpCsumOff:], 0)
	}
	if err := sa.esp.Seal(e.cs, b[:end], espOff, seq, sa.esn); err != nil {
		return 0, DropHdrError // cannot happen: the layout was built above
	}
	if sa.encap && sa.v6 {
		udpChecksum6(b[start:end], sa.ipLen, sa.addrSum)
	}
	f.Off, f.Len = start, total
	return in.len, DropNone
}

// encapTransport inserts ESP (and UDP) after the packet's IP header, which
// moves into the headroom; for IPv6 the hop-by-hop and routing headers stay
// in front of ESP (RFC 4303 section 3.1.1).
func (e *Engine) encapTransport(sa *OutboundSA, f *Frame, in innerInfo, seq uint64) Drop {
	data := f.Data()[:in.len]
	var ipLen, nhOff int
	if in.v6 {
		var d Drop
		if ipLen, nhOff, d = walkV6(data, false); d != DropNone {
			return d
		}
	} else {
		if ipv4(data).isFragment() {
			return DropFragment
		}
		ipLen, nhOff = ipv4(data).headerLen(), ipv4ProtoOff
	}
	nh := data[nhOff]
	ins := 4 + 4 + sa.esp.IVLen() // SPI seq IV
	if sa.encap {
		ins += udpLen
	}
	body := in.len - ipLen
	ptLen := ptLenFor(body, sa.esp.PadTo())
	post := ptLen - body + sa.esp.ICVLen()
	if f.Off < ins || len(f.Buf)-f.Off-in.len < post {
		return DropNoRoom
	}
	b := f.Buf
	start, end := f.Off-ins, f.Off+in.len+post
	trailer(b[f.Off+ipLen:], body, body, sa.esp.PadTo(), nh)
	copy(b[start:], b[f.Off:f.Off+ipLen])
	total := end - start
	espOff := start + ipLen
	proto := uint8(protoESP)
	if sa.encap {
		proto = protoUDP
		putPorts(b[espOff:], sa.sport, sa.dport)
		putUint16(b[espOff+udpLenOff:], uint16(total-ipLen))
		putUint16(b[espOff+udpCsumOff:], 0)
		espOff += udpLen
	}
	putUint32(b[espOff:], sa.spi)
	putUint32(b[espOff+4:], uint32(seq))
	b[start+nhOff] = proto
	if in.v6 {
		ipv6(b[start:]).setPayloadLen(total - ipv6Len)
	} else {
		h := ipv4(b[start:])
		h.setTotalLen(total)
		h.setChecksum()
	}
	if err := sa.esp.Seal(e.cs, b[:end], espOff, seq, sa.esn); err != nil {
		return DropHdrError
	}
	if sa.encap && in.v6 {
		h := b[start:end]
		udpChecksum6(h, ipLen, sum(h[ipv6SrcOff:ipv6DstOff+16], 0))
	}
	f.Off, f.Len = start, total
	return DropNone
}

// walkV6 finds where ESP goes in (or was found in) an IPv6 packet: after the
// hop-by-hop and routing headers, and on input also after destination
// options. It returns the length of the headers before that point and the
// offset of the next header byte that names what follows them.
func walkV6(p []byte, input bool) (hdrLen, nhOff int, d Drop) {
	hdrLen, nhOff = ipv6Len, ipv6NextOff
	for {
		switch p[nhOff] {
		case protoHopByHop, protoRouting:
		case protoDstOpts:
			if !input {
				return hdrLen, nhOff, DropNone
			}
		case protoFragment:
			return 0, 0, DropFragment
		default:
			return hdrLen, nhOff, DropNone
		}
		if len(p) < hdrLen+8 {
			return 0, 0, DropHdrError
		}
		next := hdrLen + (int(p[hdrLen+1])+1)*8
		if next > len(p) {
			return 0, 0, DropHdrError
		}
		nhOff, hdrLen = hdrLen, next
	}
}

// udpChecksum6 fills in the UDP checksum of an IPv6 packet p whose UDP header
// is at off; addrSum is the sum of its source and destination addresses.
// RFC 8200 section 8.1 makes it mandatory, and a zero result goes as 0xffff.
func udpChecksum6(p []byte, off int, addrSum uint64) {
	u := p[off:]
	u[udpCsumOff], u[udpCsumOff+1] = 0, 0
	acc := addrSum + uint64(len(u)) + protoUDP
	c := ^fold(sum(u, acc))
	if c == 0 {
		c = 0xffff
	}
	putUint16(u[udpCsumOff:], c)
}
