package control

import (
	"errors"
	"fmt"
	"strings"

	"github.com/espx/espx/crypto"
)

// Proposals are configured as strongSwan writes them, so configurations
// translate: "aes128gcm16-prfsha256-x25519" for IKE, "aes256-sha256-esn-
// noesn" for ESP. Keywords are joined with '-'; a list of proposals is
// separated with ',' and given in order of preference.

// ErrProposal is wrapped by proposal string errors.
var ErrProposal = errors.New("invalid proposal")

type keyword struct {
	t      TransformType
	id     uint16
	keyLen uint16
}

var keywords = map[string]keyword{
	"aes128":           {TransformENCR, uint16(crypto.ENCR_AES_CBC), 128},
	"aes192":           {TransformENCR, uint16(crypto.ENCR_AES_CBC), 192},
	"aes256":           {TransformENCR, uint16(crypto.ENCR_AES_CBC), 256},
	"aes128gcm16":      {TransformENCR, uint16(crypto.ENCR_AES_GCM_16), 128},
	"aes192gcm16":      {TransformENCR, uint16(crypto.ENCR_AES_GCM_16), 192},
	"aes256gcm16":      {TransformENCR, uint16(crypto.ENCR_AES_GCM_16), 256},
	"aes128gcm128":     {TransformENCR, uint16(crypto.ENCR_AES_GCM_16), 128},
	"aes192gcm128":     {TransformENCR, uint16(crypto.ENCR_AES_GCM_16), 192},
	"aes256gcm128":     {TransformENCR, uint16(crypto.ENCR_AES_GCM_16), 256},
	"aes128gmac":       {TransformENCR, uint16(crypto.ENCR_NULL_AUTH_AES_GMAC), 128},
	"aes192gmac":       {TransformENCR, uint16(crypto.ENCR_NULL_AUTH_AES_GMAC), 192},
	"aes256gmac":       {TransformENCR, uint16(crypto.ENCR_NULL_AUTH_AES_GMAC), 256},
	"chacha20poly1305": {TransformENCR, uint16(crypto.ENCR_CHACHA20_POLY1305), 0},
	"null":             {TransformENCR, uint16(crypto.ENCR_NULL), 0},
	"sha256":           {TransformINTEG, uint16(crypto.AUTH_HMAC_SHA2_256_128), 0},
	"sha2_256":         {TransformINTEG, uint16(crypto.AUTH_HMAC_SHA2_256_128), 0},
	"sha384":           {TransformINTEG, uint16(crypto.AUTH_HMAC_SHA2_384_192), 0},
	"sha2_384":         {TransformINTEG, uint16(crypto.AUTH_HMAC_SHA2_384_192), 0},
	"sha512":           {TransformINTEG, uint16(crypto.AUTH_HMAC_SHA2_512_256), 0},
	"sha2_512":         {TransformINTEG, uint16(crypto.AUTH_HMAC_SHA2_512_256), 0},
	"prfsha256":        {TransformPRF, uint16(crypto.PRF_HMAC_SHA2_256), 0},
	"prfsha384":        {TransformPRF, uint16(crypto.PRF_HMAC_SHA2_384), 0},
	"prfsha512":        {TransformPRF, uint16(crypto.PRF_HMAC_SHA2_512), 0},
	"modp2048":         {TransformKE, uint16(crypto.MODP_2048), 0},
	"ecp256":           {TransformKE, uint16(crypto.ECP_256), 0},
	"ecp384":           {TransformKE, uint16(crypto.ECP_384), 0},
	"x25519":           {TransformKE, uint16(crypto.CURVE25519), 0},
	"curve25519":       {TransformKE, uint16(crypto.CURVE25519), 0},
	"esn":              {TransformESN, ESNYes, 0},
	"noesn":            {TransformESN, ESNNo, 0},
}

// integPRF is the PRF strongSwan adds to an IKE proposal that names an
// integrity algorithm but no PRF.
var integPRF = map[uint16]uint16{
	uint16(crypto.AUTH_HMAC_SHA2_256_128): uint16(crypto.PRF_HMAC_SHA2_256),
	uint16(crypto.AUTH_HMAC_SHA2_384_192): uint16(crypto.PRF_HMAC_SHA2_384),
	uint16(crypto.AUTH_HMAC_SHA2_512_256): uint16(crypto.PRF_HMAC_SHA2_512),
}

func isAEAD(id uint16) bool {
	switch crypto.EncrID(id) {
	case crypto.ENCR_AES_GCM_16, crypto.ENCR_CHACHA20_POLY1305, crypto.ENCR_NULL_AUTH_AES_GMAC:
		return true
	}
	return false
}

// ParseProposals parses a comma-separated list of proposals for protocol
// p (ProtoIKE or ProtoESP), numbered from 1 in order of preference.
func ParseProposals(p ProtocolID, s string) ([]Proposal, error) {
	var ps []Proposal
	for i, one := range strings.Split(s, ",") {
		pr, err := parseProposal(p, strings.TrimSpace(one))
		if err != nil {
			return nil, err
		}
		pr.Num = uint8(i + 1)
		ps = append(ps, pr)
	}
	return ps, nil
}

func parseProposal(p ProtocolID, s string) (Proposal, error) {
	pr := Proposal{Protocol: p}
	has := map[TransformType]bool{}
	var integs []uint16
	for _, w := range strings.Split(strings.ToLower(s), "-") {
		k, ok := keywords[w]
		if !ok {
			return pr, fmt.Errorf("%w %q: unknown keyword %q", ErrProposal, s, w)
		}
		if p == ProtoIKE && k.t == TransformESN {
			return pr, fmt.Errorf("%w %q: ESN is for ESP", ErrProposal, s)
		}
		if p == ProtoESP && k.t == TransformPRF {
			return pr, fmt.Errorf("%w %q: a PRF is for IKE", ErrProposal, s)
		}
		if p == ProtoIKE && k.t == TransformENCR && (k.id == uint16(crypto.ENCR_NULL) || k.id == uint16(crypto.ENCR_NULL_AUTH_AES_GMAC)) {
			return pr, fmt.Errorf("%w %q: IKE must be encrypted", ErrProposal, s)
		}
		if k.t == TransformINTEG {
			integs = append(integs, k.id)
		}
		has[k.t] = true
		pr.Transforms = append(pr.Transforms, Transform{Type: k.t, ID: k.id, KeyLength: k.keyLen})
	}
	var aead, plain bool
	for _, t := range pr.Transforms {
		if t.Type == TransformENCR {
			aead = aead || isAEAD(t.ID)
			plain = plain || !isAEAD(t.ID)
		}
	}
	switch {
	case !has[TransformENCR]:
		return pr, fmt.Errorf("%w %q: no encryption algorithm", ErrProposal, s)
	case aead && plain:
		return pr, fmt.Errorf("%w %q: combined-mode and other encryption algorithms cannot share a proposal (RFC 5282 section 8)", ErrProposal, s)
	case aead && has[TransformINTEG]:
		return pr, fmt.Errorf("%w %q: a combined-mode algorithm takes no integrity algorithm", ErrProposal, s)
	case plain && !has[TransformINTEG]:
		return pr, fmt.Errorf("%w %q: no integrity algorithm", ErrProposal, s)
	}
	if p == ProtoIKE {
		if !has[TransformPRF] {
			if len(integs) == 0 {
				return pr, fmt.Errorf("%w %q: no PRF (say prfsha256, for example)", ErrProposal, s)
			}
			for _, id := range integs {
				pr.Transforms = append(pr.Transforms, Transform{Type: TransformPRF, ID: integPRF[id]})
			}
		}
		if !has[TransformKE] {
			return pr, fmt.Errorf("%w %q: no key exchange method", ErrProposal, s)
		}
	}
	if p == ProtoESP && !has[TransformESN] {
		// Without a word on ESN strongSwan offers no ESN only.
		pr.Transforms = append(pr.Transforms, Transform{Type: TransformESN, ID: ESNNo})
	}
	return pr, nil
}

// SelectProposal chooses, as a responder, from the peer's offered proposals
// using ours in our order of preference (strongSwan's default,
// prefer_configured_proposals): for the first of ours that some offered
// proposal can satisfy, each transform type takes our most preferred
// algorithm that the peer also offered. The result carries the offered
// proposal's number and SPI, ready to send back (RFC 7296 section 3.3.6).
func SelectProposal(ours, offered []Proposal) (Proposal, bool) {
	for _, o := range ours {
		for _, p := range offered {
			if p.Protocol != o.Protocol {
				continue
			}
			if sel, ok := match(o, p); ok {
				sel.Num, sel.SPI = p.Num, p.SPI
				return sel, true
			}
		}
	}
	return Proposal{}, false
}

// match picks one transform per type present in either proposal.
func match(ours, theirs Proposal) (Proposal, bool) {
	sel := Proposal{Protocol: ours.Protocol}
	for _, t := range []TransformType{TransformENCR, TransformPRF, TransformINTEG, TransformKE, TransformESN} {
		inOurs, inTheirs := false, false
		for _, a := range theirs.Transforms {
			inTheirs = inTheirs || a.Type == t
		}
		found := false
		for _, a := range ours.Transforms {
			if a.Type != t {
				continue
			}
			inOurs = true
			for _, b := range theirs.Transforms {
				if b == a {
					sel.Transforms = append(sel.Transforms, a)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if inOurs != inTheirs || inOurs && !found {
			return Proposal{}, false
		}
	}
	return sel, true
}

// canonical names each transform by its preferred keyword, for String.
var canonical = func() map[keyword]string {
	m := map[keyword]string{}
	for w, k := range keywords {
		// Of aliases, the shortest and then alphabetically first:
		// sha256 over sha2_256, x25519 over curve25519.
		if old, ok := m[k]; !ok || len(w) < len(old) || len(w) == len(old) && w < old {
			m[k] = w
		}
	}
	return m
}()

// String writes a proposal in strongSwan's syntax, for logs.
func (p Proposal) String() string {
	var words []string
	for _, t := range p.Transforms {
		w, ok := canonical[keyword{t.Type, t.ID, t.KeyLength}]
		if !ok {
			w = fmt.Sprintf("%d:%d", t.Type, t.ID)
		}
		words = append(words, w)
	}
	return strings.Join(words, "-")
}
