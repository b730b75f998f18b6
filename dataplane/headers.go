package dataplane

import "encoding/binary"

// Typed views over header bytes. A view is only valid after its length has
// been checked by the parser that made it.

// IP protocol numbers this package handles.
const (
	protoHopByHop = 0
	protoIPIP     = 4 // IPv4 in IP
	protoUDP      = 17
	protoIPv6     = 41
	protoRouting  = 43
	protoFragment = 44
	protoESP      = 50
	protoNone     = 59 // no next header: an ESP dummy packet (RFC 4303 section 2.6)
	protoDstOpts  = 60
)

// IPv4 header, RFC 791.
const (
	ipv4MinLen     = 20
	ipv4TOSOff     = 1
	ipv4LenOff     = 2
	ipv4IDOff      = 4
	ipv4FlagsOff   = 6
	ipv4TTLOff     = 8
	ipv4ProtoOff   = 9
	ipv4CsumOff    = 10
	ipv4SrcOff     = 12
	ipv4DstOff     = 16
	ipv4FlagDF     = 0x4000
	ipv4FlagMF     = 0x2000
	ipv4FragMask   = 0x1fff
	ipv4DefaultTTL = 64
)

type ipv4 []byte

func (h ipv4) headerLen() int    { return int(h[0]&0x0f) * 4 }
func (h ipv4) tos() uint8        { return h[ipv4TOSOff] }
func (h ipv4) totalLen() int     { return int(binary.BigEndian.Uint16(h[ipv4LenOff:])) }
func (h ipv4) flagsFrag() uint16 { return binary.BigEndian.Uint16(h[ipv4FlagsOff:]) }
func (h ipv4) proto() uint8      { return h[ipv4ProtoOff] }
func (h ipv4) isFragment() bool  { return h.flagsFrag()&(ipv4FlagMF|ipv4FragMask) != 0 }

func (h ipv4) setTotalLen(n int) { binary.BigEndian.PutUint16(h[ipv4LenOff:], uint16(n)) }

// setChecksum computes the header checksum of h[:headerLen()].
func (h ipv4) setChecksum() {
	h[ipv4CsumOff], h[ipv4CsumOff+1] = 0, 0
	binary.BigEndian.PutUint16(h[ipv4CsumOff:], ^fold(sum(h[:h.headerLen()], 0)))
}

// IPv6 header, RFC 8200.
const (
	ipv6Len       = 40
	ipv6PayLenOff = 4
	ipv6NextOff   = 6
	ipv6HopOff    = 7
	ipv6SrcOff    = 8
	ipv6DstOff    = 24
)

type ipv6 []byte

// trafficClass is the 8 bits that sit across the first two bytes.
func (h ipv6) trafficClass() uint8 { return h[0]<<4 | h[1]>>4 }
func (h ipv6) setTrafficClass(tc uint8) {
	h[0] = 0x60 | tc>>4
	h[1] = h[1]&0x0f | tc<<4
}
func (h ipv6) payloadLen() int     { return int(binary.BigEndian.Uint16(h[ipv6PayLenOff:])) }
func (h ipv6) setPayloadLen(n int) { binary.BigEndian.PutUint16(h[ipv6PayLenOff:], uint16(n)) }

// UDP header, RFC 768; UDP-encapsulated ESP, RFC 3948.
const (
	udpLen     = 8
	udpLenOff  = 4
	udpCsumOff = 6
	// PortNATT is the IKE and ESP-in-UDP port of RFC 3948.
	PortNATT = 4500
)

// ESP header, RFC 4303 section 2.
const (
	espSPIOff = 0
	espSeqOff = 4
)

type espHdr []byte

func (h espHdr) spi() uint32 { return binary.BigEndian.Uint32(h[espSPIOff:]) }
func (h espHdr) seq() uint32 { return binary.BigEndian.Uint32(h[espSeqOff:]) }

// ECN codepoints, RFC 3168.
const (
	ecnMask   = 0x03
	ecnNotECT = 0x00
	ecnECT0   = 0x02
	ecnCE     = 0x03
)

// encapECN is the outer ECN field for an inner one, RFC 6040 normal mode as
// Linux implements it: copy, except that CE leaves as ECT(0) so that a
// congestion mark is not counted twice.
func encapECN(inner uint8) uint8 {
	if inner&ecnMask == ecnCE {
		return ecnECT0
	}
	return inner & ecnMask
}

func putUint32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func putUint16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }

func putPorts(b []byte, src, dst uint16) {
	putUint16(b[0:], src)
	putUint16(b[2:], dst)
}
