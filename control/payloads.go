package control

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Payload is one typed IKE payload. Bodies exclude the generic header.
type Payload interface {
	Type() PayloadType
	appendBody(b []byte) []byte
}

// decodePayload decodes the body of a payload of type t, or returns nil
// for a type this codec does not know.
func decodePayload(t PayloadType, body []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return decodeSA(body)
	case PayloadKE:
		return decodeKE(body)
	case PayloadIDi, PayloadIDr:
		return decodeID(t, body)
	case PayloadAUTH:
		return decodeAuth(body)
	case PayloadNonce:
		return decodeNonce(body)
	case PayloadNotify:
		return decodeNotify(body)
	case PayloadDelete:
		return decodeDelete(body)
	case PayloadTSi, PayloadTSr:
		return decodeTS(t, body)
	case PayloadVendorID, PayloadCERT, PayloadCERTREQ, PayloadCP, PayloadEAP:
		return &Unknown{PType: t, Data: append([]byte(nil), body...)}, nil
	}
	return nil, nil
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// Unknown is a payload kept as bytes: one of a type this codec does not
// decode (vendor IDs, certificates, configuration, EAP) or does not know.
type Unknown struct {
	PType PayloadType
	Data  []byte
}

func (p *Unknown) Type() PayloadType          { return p.PType }
func (p *Unknown) appendBody(b []byte) []byte { return append(b, p.Data...) }

// KE is a key exchange payload (section 3.4).
type KE struct {
	Group uint16
	Data  []byte
}

func (p *KE) Type() PayloadType { return PayloadKE }
func (p *KE) appendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, p.Group)
	return append(append(b, 0, 0), p.Data...)
}

func decodeKE(b []byte) (*KE, error) {
	if len(b) < 4 {
		return nil, malformed("KE body of %d bytes", len(b))
	}
	return &KE{Group: binary.BigEndian.Uint16(b), Data: append([]byte(nil), b[4:]...)}, nil
}

// ID is an identification payload, IDi or IDr (section 3.5).
type ID struct {
	Responder bool // IDr rather than IDi
	IDType    IDType
	Data      []byte
}

func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (p *ID) appendBody(b []byte) []byte {
	return append(append(b, byte(p.IDType), 0, 0, 0), p.Data...)
}

func decodeID(t PayloadType, b []byte) (*ID, error) {
	if len(b) < 4 {
		return nil, malformed("ID body of %d bytes", len(b))
	}
	return &ID{Responder: t == PayloadIDr, IDType: IDType(b[0]), Data: append([]byte(nil), b[4:]...)}, nil
}

// String shows an identity the way strongSwan logs it.
func (p *ID) String() string {
	switch p.IDType {
	case IDIPv4, IDIPv6:
		if a, ok := netip.AddrFromSlice(p.Data); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822:
		return string(p.Data)
	}
	return fmt.Sprintf("%d:%x", p.IDType, p.Data)
}

// Auth is an authentication payload (section 3.8).
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (p *Auth) Type() PayloadType { return PayloadAUTH }
func (p *Auth) appendBody(b []byte) []byte {
	return append(append(b, byte(p.Method), 0, 0, 0), p.Data...)
}

func decodeAuth(b []byte) (*Auth, error) {
	if len(b) < 4 {
		return nil, malformed("AUTH body of %d bytes", len(b))
	}
	return &Auth{Method: AuthMethod(b[0]), Data: append([]byte(nil), b[4:]...)}, nil
}

// Nonce is a nonce payload, Ni or Nr (section 3.9): 16 to 256 bytes.
type Nonce struct{ Data []byte }

// Nonce length bounds of section 3.9.
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

func (p *Nonce) Type() PayloadType          { return PayloadNonce }
func (p *Nonce) appendBody(b []byte) []byte { return append(b, p.Data...) }

func decodeNonce(b []byte) (*Nonce, error) {
	if len(b) < MinNonceLen || len(b) > MaxNonceLen {
		return nil, malformed("nonce of %d bytes, want %d to %d", len(b), MinNonceLen, MaxNonceLen)
	}
	return &Nonce{Data: append([]byte(nil), b...)}, nil
}

// Notify is a notify payload (section 3.10).
type Notify struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (p *Notify) Type() PayloadType { return PayloadNotify }
func (p *Notify) appendBody(b []byte) []byte {
	b = append(b, byte(p.Protocol), byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	return append(append(b, p.SPI...), p.Data...)
}

func decodeNotify(b []byte) (*Notify, error) {
	if len(b) < 4 {
		return nil, malformed("notify body of %d bytes", len(b))
	}
	spiLen := int(b[1])
	if len(b) < 4+spiLen {
		return nil, malformed("notify SPI of %d bytes in a body of %d", spiLen, len(b))
	}
	return &Notify{
		Protocol:   ProtocolID(b[0]),
		NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:])),
		SPI:        append([]byte(nil), b[4:4+spiLen]...),
		Data:       append([]byte(nil), b[4+spiLen:]...),
	}, nil
}

// Delete is a delete payload (section 3.11). For IKE the SPI size is 0 and
// there are no SPIs; for ESP and AH each SPI is 4 bytes.
type Delete struct {
	Protocol ProtocolID
	SPIs     []uint32
}

func (p *Delete) Type() PayloadType { return PayloadDelete }
func (p *Delete) appendBody(b []byte) []byte {
	size := byte(4)
	if p.Protocol == ProtoIKE {
		size = 0
	}
	b = append(b, byte(p.Protocol), size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for _, s := range p.SPIs {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	return b
}

func decodeDelete(b []byte) (*Delete, error) {
	if len(b) < 4 {
		return nil, malformed("delete body of %d bytes", len(b))
	}
	p := &Delete{Protocol: ProtocolID(b[0])}
	size, n := int(b[1]), int(binary.BigEndian.Uint16(b[2:]))
	switch {
	case p.Protocol == ProtoIKE && size == 0 && n == 0 && len(b) == 4:
		return p, nil
	case (p.Protocol == ProtoESP || p.Protocol == ProtoAH) && size == 4 && len(b) == 4+4*n:
		for i := range n {
			p.SPIs = append(p.SPIs, binary.BigEndian.Uint32(b[4+4*i:]))
		}
		return p, nil
	}
	return nil, malformed("delete of %v with SPI size %d, %d SPIs, %d bytes", p.Protocol, size, n, len(b))
}

// TrafficSelector is one selector of a TS payload (section 3.13.1): an
// address range, a protocol (0 any) and a port range.
type TrafficSelector struct {
	IPProto            uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
}

// TS is a traffic selector payload, TSi or TSr (section 3.13).
type TS struct {
	Responder bool // TSr rather than TSi
	Selectors []TrafficSelector
}

func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

func (p *TS) appendBody(b []byte) []byte {
	b = append(b, byte(len(p.Selectors)), 0, 0, 0)
	for _, s := range p.Selectors {
		t, n := TSIPv4Range, 16
		if s.Start.Is6() {
			t, n = TSIPv6Range, 40
		}
		b = append(b, byte(t), s.IPProto)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = binary.BigEndian.AppendUint16(b, s.StartPort)
		b = binary.BigEndian.AppendUint16(b, s.EndPort)
		b = append(b, s.Start.AsSlice()...)
		b = append(b, s.End.AsSlice()...)
	}
	return b
}

func decodeTS(t PayloadType, b []byte) (*TS, error) {
	if len(b) < 4 {
		return nil, malformed("TS body of %d bytes", len(b))
	}
	n := int(b[0])
	if n == 0 {
		return nil, malformed("TS payload without selectors")
	}
	p := &TS{Responder: t == PayloadTSr}
	off := 4
	for i := range n {
		if len(b)-off < 8 {
			return nil, malformed("traffic selector %d truncated", i)
		}
		s := b[off:]
		tsType, l := TSType(s[0]), int(binary.BigEndian.Uint16(s[2:]))
		var alen int
		switch tsType {
		case TSIPv4Range:
			alen = 4
		case TSIPv6Range:
			alen = 16
		default:
			return nil, malformed("traffic selector %d of type %d", i, tsType)
		}
		if l != 8+2*alen || l > len(s) {
			return nil, malformed("traffic selector %d of type %d with length %d", i, tsType, l)
		}
		start, _ := netip.AddrFromSlice(s[8 : 8+alen])
		end, _ := netip.AddrFromSlice(s[8+alen : 8+2*alen])
		sel := TrafficSelector{
			IPProto:   s[1],
			StartPort: binary.BigEndian.Uint16(s[4:]),
			EndPort:   binary.BigEndian.Uint16(s[6:]),
			Start:     start,
			End:       end,
		}
		p.Selectors = append(p.Selectors, sel)
		off += l
	}
	if off != len(b) {
		return nil, malformed("%d bytes after %d traffic selectors", len(b)-off, n)
	}
	return p, nil
}
