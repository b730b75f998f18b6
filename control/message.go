package control

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// IKE header (RFC 7296 section 3.1) and generic payload header (3.2).
const (
	headerLen        = 28
	genericHeaderLen = 4
	// version 2.0: major version in the high nibble.
	ikeVersion   = 0x20
	majorVersion = 2

	hdrSPIiOff     = 0
	hdrSPIrOff     = 8
	hdrNextOff     = 16
	hdrVersionOff  = 17
	hdrExchangeOff = 18
	hdrFlagsOff    = 19
	hdrMsgIDOff    = 20
	hdrLengthOff   = 24

	criticalBit = 0x80

	// MaxMessageLen bounds what the decoder accepts: IKE over UDP never
	// carries more than an IPv6 jumbo-free datagram.
	MaxMessageLen = 65535
)

// Header flags (section 3.1).
const (
	FlagInitiator = 0x08
	FlagVersion   = 0x10
	FlagResponse  = 0x20
)

// Codec errors. Decode wraps them with where and why.
var (
	// ErrMalformed: the message does not follow the wire format; the
	// receiver answers nothing, or INVALID_SYNTAX inside an
	// authenticated exchange.
	ErrMalformed = errors.New("malformed IKE message")
	// ErrMajorVersion: a major version other than 2 (answered with
	// INVALID_MAJOR_VERSION, section 2.5).
	ErrMajorVersion = errors.New("unsupported IKE major version")
	// ErrCriticalPayload: an unknown payload with the critical bit set
	// (answered with UNSUPPORTED_CRITICAL_PAYLOAD, section 2.5).
	ErrCriticalPayload = errors.New("unsupported critical payload")
)

// CriticalPayloadError carries the type of the unknown critical payload,
// which the UNSUPPORTED_CRITICAL_PAYLOAD notify must name.
type CriticalPayloadError struct{ Type PayloadType }

func (e *CriticalPayloadError) Error() string {
	return fmt.Sprintf("%v: %v", ErrCriticalPayload, e.Type)
}

func (e *CriticalPayloadError) Unwrap() error { return ErrCriticalPayload }

// Header is the fixed IKE header.
type Header struct {
	SPIi, SPIr uint64
	Exchange   ExchangeType
	Flags      uint8
	MessageID  uint32
}

// IsResponse says the message answers a request.
func (h *Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// FromInitiator says the message was sent by the original initiator of
// the IKE SA.
func (h *Header) FromInitiator() bool { return h.Flags&FlagInitiator != 0 }

// Message is a decoded IKE message. An encrypted message (one whose last
// payload is SK) keeps its cleartext payloads in Payloads and the position
// of the SK payload in SK, so that the IKE SA that owns it can verify and
// decrypt it and then decode the inner payloads with DecodePayloads.
type Message struct {
	Header
	Payloads []Payload
	// SK is set when the message carries an SK payload.
	SK *Encrypted
}

// Encrypted locates an SK payload in a raw message.
type Encrypted struct {
	// Offset is where the SK payload's generic header starts.
	Offset int
	// First is the type of the first payload inside.
	First PayloadType
}

// DecodeHeader reads the IKE header only: enough to find the IKE SA a
// message belongs to before spending anything on it.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < headerLen {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrMalformed, len(b))
	}
	if b[hdrVersionOff]>>4 != majorVersion {
		return Header{}, fmt.Errorf("%w: version %#x", ErrMajorVersion, b[hdrVersionOff])
	}
	n := binary.BigEndian.Uint32(b[hdrLengthOff:])
	if int(n) != len(b) || n > MaxMessageLen {
		return Header{}, fmt.Errorf("%w: header says %d bytes, datagram has %d", ErrMalformed, n, len(b))
	}
	return Header{
		SPIi:      binary.BigEndian.Uint64(b[hdrSPIiOff:]),
		SPIr:      binary.BigEndian.Uint64(b[hdrSPIrOff:]),
		Exchange:  ExchangeType(b[hdrExchangeOff]),
		Flags:     b[hdrFlagsOff],
		MessageID: binary.BigEndian.Uint32(b[hdrMsgIDOff:]),
	}, nil
}

// Decode parses a whole IKE message. Payloads inside an SK payload are left
// encrypted; see Message.SK.
func Decode(b []byte) (*Message, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return nil, err
	}
	m := &Message{Header: h}
	m.Payloads, m.SK, err = decodeChain(PayloadType(b[hdrNextOff]), b, headerLen, true)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DecodePayloads parses a chain of payloads that starts with first, such as
// the plaintext of an SK payload.
func DecodePayloads(first PayloadType, b []byte) ([]Payload, error) {
	ps, _, err := decodeChain(first, b, 0, false)
	return ps, err
}

// decodeChain walks the next-payload chain of b from off.
func decodeChain(next PayloadType, b []byte, off int, outer bool) ([]Payload, *Encrypted, error) {
	var ps []Payload
	for next != PayloadNone {
		if len(b)-off < genericHeaderLen {
			return nil, nil, fmt.Errorf("%w: %v payload header truncated at offset %d", ErrMalformed, next, off)
		}
		g := b[off:]
		following := PayloadType(g[0])
		critical := g[1]&criticalBit != 0
		n := int(binary.BigEndian.Uint16(g[2:]))
		if n < genericHeaderLen || n > len(g) {
			return nil, nil, fmt.Errorf("%w: %v payload length %d at offset %d, %d bytes left", ErrMalformed, next, n, off, len(g))
		}
		body := g[genericHeaderLen:n]
		if next == PayloadSK {
			// Section 3.14: SK is the last payload; its next payload
			// field names the first payload inside.
			if !outer {
				return nil, nil, fmt.Errorf("%w: SK payload inside SK", ErrMalformed)
			}
			if off+n != len(b) {
				return nil, nil, fmt.Errorf("%w: %d bytes after the SK payload", ErrMalformed, len(b)-off-n)
			}
			return ps, &Encrypted{Offset: off, First: following}, nil
		}
		p, err := decodePayload(next, body)
		if err != nil {
			return nil, nil, fmt.Errorf("%v payload at offset %d: %w", next, off, err)
		}
		if p == nil {
			// Unknown: skip it unless the sender says we must
			// understand it (section 2.5).
			if critical {
				return nil, nil, &CriticalPayloadError{Type: next}
			}
			p = &Unknown{PType: next, Data: append([]byte(nil), body...)}
		}
		ps = append(ps, p)
		off += n
		next = following
	}
	if off != len(b) {
		return nil, nil, fmt.Errorf("%w: %d bytes after the last payload", ErrMalformed, len(b)-off)
	}
	return ps, nil, nil
}

// Encode lays out a message with cleartext payloads only (IKE_SA_INIT, or
// an unprotected notify).
func (m *Message) Encode() []byte {
	b := m.appendHeader(make([]byte, 0, 512))
	b = AppendPayloads(b, m.Payloads, hdrNextOff)
	binary.BigEndian.PutUint32(b[hdrLengthOff:], uint32(len(b)))
	return b
}

// Sealer protects the plaintext of an SK payload (section 3.14, RFC 5282).
type Sealer interface {
	// Overhead is how many bytes the SK payload body takes beyond n
	// bytes of plaintext: IV, padding and pad length, ICV.
	Overhead(n int) int
	// Seal appends the protected body of the SK payload whose generic
	// header starts at msg[skOff] to msg, which holds the whole message
	// up to that body with its final lengths already set.
	Seal(msg []byte, skOff int, plaintext []byte) ([]byte, error)
}

// EncodeEncrypted lays out a message whose cleartext payloads (normally
// none) are followed by an SK payload holding inner.
func (m *Message) EncodeEncrypted(inner []Payload, s Sealer) ([]byte, error) {
	plain := AppendPayloads(nil, inner, -1)
	first := PayloadNone
	if len(inner) > 0 {
		first = inner[0].Type()
	}
	out, err := m.encodeSK(first, plain, s)
	clear(plain)
	return out, err
}

// encodeSK is EncodeEncrypted of inner payloads already encoded, plain,
// whose first is of type first.
func (m *Message) encodeSK(first PayloadType, plain []byte, s Sealer) ([]byte, error) {
	b := m.appendHeader(make([]byte, 0, 512))
	b = AppendPayloads(b, m.Payloads, hdrNextOff)
	// The next-payload field that must name SK: the header's, or the last
	// cleartext payload's.
	link := hdrNextOff
	if len(m.Payloads) > 0 {
		link = lastPayloadOff(b, headerLen)
	}
	b[link] = byte(PayloadSK)
	skOff := len(b)
	bodyLen := s.Overhead(len(plain)) + len(plain)
	total := skOff + genericHeaderLen + bodyLen
	if genericHeaderLen+bodyLen > 0xffff || total > MaxMessageLen {
		return nil, fmt.Errorf("%w: message of %d bytes too long", ErrMalformed, total)
	}
	b = append(b, byte(first), 0, 0, 0)
	binary.BigEndian.PutUint16(b[skOff+2:], uint16(genericHeaderLen+bodyLen))
	binary.BigEndian.PutUint32(b[hdrLengthOff:], uint32(total))
	out, err := s.Seal(b, skOff, plain)
	if err != nil {
		return nil, err
	}
	if len(out) != total {
		return nil, fmt.Errorf("sealer wrote %d bytes, said %d", len(out), total)
	}
	return out, nil
}

func (m *Message) appendHeader(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.SPIi)
	b = binary.BigEndian.AppendUint64(b, m.SPIr)
	b = append(b, byte(PayloadNone), ikeVersion, byte(m.Exchange), m.Flags)
	b = binary.BigEndian.AppendUint32(b, m.MessageID)
	return binary.BigEndian.AppendUint32(b, 0) // length, set at the end
}

// AppendPayloads appends ps as a chain. The type of the first goes into
// b[link] unless link is negative.
func AppendPayloads(b []byte, ps []Payload, link int) []byte {
	for _, p := range ps {
		if link >= 0 {
			b[link] = byte(p.Type())
		}
		link = len(b)
		start := len(b)
		b = append(b, byte(PayloadNone), 0, 0, 0)
		b = p.appendBody(b)
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

// lastPayloadOff finds the generic header of the last payload of the chain
// that starts at off.
func lastPayloadOff(b []byte, off int) int {
	for {
		n := int(binary.BigEndian.Uint16(b[off+2:]))
		if off+n >= len(b) {
			return off
		}
		off += n
	}
}
