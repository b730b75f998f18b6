package control

import "encoding/binary"

// SA is a security association payload (section 3.3): proposals, each a
// set of transforms.
type SA struct {
	Proposals []Proposal
}

// Proposal is one proposal substructure (section 3.3.1). Num starts at 1
// and goes up by one; a responder's single proposal repeats the number of
// the one it chose.
type Proposal struct {
	Num        uint8
	Protocol   ProtocolID
	SPI        []byte // 8 bytes for IKE (or none in IKE_SA_INIT), 4 for ESP
	Transforms []Transform
}

// Transform is one transform substructure (section 3.3.2). KeyLength is
// the Key Length attribute in bits, 0 when absent.
type Transform struct {
	Type      TransformType
	ID        uint16
	KeyLength uint16
}

// Substructure layout constants.
const (
	lastSubstruc = 0
	moreProposal = 2
	moreTransfrm = 3
	proposalHdr  = 8
	transformHdr = 8
	attrTV       = 0x8000 // attribute format bit: type/value
)

func (p *SA) Type() PayloadType { return PayloadSA }

func (p *SA) appendBody(b []byte) []byte {
	for i, pr := range p.Proposals {
		start := len(b)
		more := byte(moreProposal)
		if i == len(p.Proposals)-1 {
			more = lastSubstruc
		}
		b = append(b, more, 0, 0, 0, pr.Num, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
		b = append(b, pr.SPI...)
		for j, t := range pr.Transforms {
			tstart := len(b)
			more := byte(moreTransfrm)
			if j == len(pr.Transforms)-1 {
				more = lastSubstruc
			}
			b = append(b, more, 0, 0, 0, byte(t.Type), 0)
			b = binary.BigEndian.AppendUint16(b, t.ID)
			if t.KeyLength != 0 {
				b = binary.BigEndian.AppendUint16(b, attrTV|attrKeyLength)
				b = binary.BigEndian.AppendUint16(b, t.KeyLength)
			}
			binary.BigEndian.PutUint16(b[tstart+2:], uint16(len(b)-tstart))
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

func decodeSA(b []byte) (*SA, error) {
	p := &SA{}
	for i := 0; len(b) > 0; i++ {
		if len(b) < proposalHdr {
			return nil, malformed("proposal %d truncated", i+1)
		}
		more, l := b[0], int(binary.BigEndian.Uint16(b[2:]))
		spiLen, nt := int(b[6]), int(b[7])
		if l < proposalHdr+spiLen || l > len(b) {
			return nil, malformed("proposal %d length %d", i+1, l)
		}
		pr := Proposal{Num: b[4], Protocol: ProtocolID(b[5]), SPI: append([]byte(nil), b[proposalHdr:proposalHdr+spiLen]...)}
		ts := b[proposalHdr+spiLen : l]
		for j := 0; len(ts) > 0; j++ {
			t, n, last, err := decodeTransform(ts)
			if err != nil {
				return nil, malformed("proposal %d transform %d: %v", i+1, j+1, err)
			}
			pr.Transforms = append(pr.Transforms, t)
			ts = ts[n:]
			if last != (len(ts) == 0) {
				return nil, malformed("proposal %d: transform chain and length disagree", i+1)
			}
		}
		if len(pr.Transforms) != nt {
			return nil, malformed("proposal %d says %d transforms, has %d", i+1, nt, len(pr.Transforms))
		}
		p.Proposals = append(p.Proposals, pr)
		b = b[l:]
		if (more == lastSubstruc) != (len(b) == 0) || more != lastSubstruc && more != moreProposal {
			return nil, malformed("proposal chain and length disagree after proposal %d", i+1)
		}
	}
	if len(p.Proposals) == 0 {
		return nil, malformed("SA payload without proposals")
	}
	return p, nil
}

// decodeTransform reads one transform substructure; it keeps the Key Length
// attribute and skips others, which this version of IKEv2 does not define
// for the transforms espx knows.
func decodeTransform(b []byte) (t Transform, n int, last bool, err error) {
	if len(b) < transformHdr {
		return t, 0, false, malformed("%d bytes", len(b))
	}
	more, l := b[0], int(binary.BigEndian.Uint16(b[2:]))
	if l < transformHdr || l > len(b) || more != lastSubstruc && more != moreTransfrm {
		return t, 0, false, malformed("length %d of %d, more %d", l, len(b), more)
	}
	t = Transform{Type: TransformType(b[4]), ID: binary.BigEndian.Uint16(b[6:])}
	attrs := b[transformHdr:l]
	for len(attrs) > 0 {
		if len(attrs) < 4 {
			return t, 0, false, malformed("attribute truncated")
		}
		at := binary.BigEndian.Uint16(attrs)
		if at&attrTV != 0 {
			if at&^attrTV == attrKeyLength {
				t.KeyLength = binary.BigEndian.Uint16(attrs[2:])
			}
			attrs = attrs[4:]
			continue
		}
		// TLV: a length follows.
		al := int(binary.BigEndian.Uint16(attrs[2:]))
		if 4+al > len(attrs) {
			return t, 0, false, malformed("attribute length %d", al)
		}
		attrs = attrs[4+al:]
	}
	return t, l, more == lastSubstruc, nil
}
