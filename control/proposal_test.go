package control

import (
	"errors"
	"testing"
)

func TestParseProposals(t *testing.T) {
	for _, tc := range []struct {
		proto ProtocolID
		in    string
		want  string
	}{
		{ProtoIKE, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519"},
		{ProtoIKE, "aes256-sha256-modp2048", "aes256-sha256-modp2048-prfsha256"},
		{ProtoIKE, "aes128-aes256-sha384-sha256-ecp384-ecp256", "aes128-aes256-sha384-sha256-ecp384-ecp256-prfsha384-prfsha256"},
		{ProtoIKE, "chacha20poly1305-prfsha512-curve25519", "chacha20poly1305-prfsha512-x25519"},
		{ProtoESP, "aes128gcm16", "aes128gcm16-noesn"},
		{ProtoESP, "aes256-sha256-esn-noesn", "aes256-sha256-esn-noesn"},
		{ProtoESP, "aes256gcm128-esn", "aes256gcm16-esn"},
		{ProtoESP, "aes128gmac-noesn", "aes128gmac-noesn"},
		{ProtoESP, "null-sha512", "null-sha512-noesn"},
		{ProtoESP, "aes128gcm16-modp2048-esn", "aes128gcm16-modp2048-esn"},
	} {
		ps, err := ParseProposals(tc.proto, tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := ps[0].String(); got != tc.want {
			t.Errorf("%q parsed as %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		proto ProtocolID
		in    string
	}{
		{ProtoIKE, "aes128gcm16-x25519"}, // no PRF
		{ProtoIKE, "aes128-sha256"},      // no KE
		{ProtoIKE, "aes128gcm16-prfsha256-x25519-esn"},
		{ProtoIKE, "null-sha256-prfsha256-x25519"}, // IKE must be encrypted
		{ProtoESP, "aes128gcm16-sha256"},
		{ProtoESP, "aes128gcm16-aes128-sha256"},
		{ProtoESP, "aes128"},
		{ProtoESP, "sha256"},
		{ProtoESP, "aes128gcm16-prfsha256"},
		{ProtoESP, "3des-md5"},
		{ProtoESP, ""},
	} {
		if _, err := ParseProposals(tc.proto, tc.in); !errors.Is(err, ErrProposal) {
			t.Errorf("%q: %v, want ErrProposal", tc.in, err)
		}
	}
	ps, err := ParseProposals(ProtoESP, "aes256gcm16-esn, aes128-sha256-noesn")
	if err != nil || len(ps) != 2 || ps[0].Num != 1 || ps[1].Num != 2 {
		t.Fatalf("list: %v %+v", err, ps)
	}
}

func mustParse(t testing.TB, p ProtocolID, s string) []Proposal {
	t.Helper()
	ps, err := ParseProposals(p, s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestSelectProposal(t *testing.T) {
	for _, tc := range []struct {
		proto          ProtocolID
		ours, theirs   string
		want           string
		wantNum        uint8
		noneAcceptable bool
	}{
		// Our preference decides among what the peer offers.
		{ProtoIKE, "aes256gcm16-prfsha384-ecp384,aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519,aes256gcm16-prfsha384-ecp384", "aes256gcm16-prfsha384-ecp384", 2, false},
		// Within a proposal, our order of algorithms decides.
		{ProtoIKE, "aes256-aes128-sha256-x25519-modp2048", "aes128-aes256-sha256-modp2048-x25519", "aes256-prfsha256-sha256-x25519", 1, false},
		// Key lengths must match too.
		{ProtoESP, "aes256gcm16", "aes128gcm16", "", 0, true},
		// ESN: we require it, the peer can only do without.
		{ProtoESP, "aes128gcm16-esn", "aes128gcm16-noesn", "", 0, true},
		// ESN: we accept both, preferring ESN; the peer offers both the other way round.
		{ProtoESP, "aes128gcm16-esn-noesn", "aes128gcm16-noesn-esn", "aes128gcm16-esn", 1, false},
		// A KE method in ours but not in theirs (PFS required) fails.
		{ProtoESP, "aes128gcm16-x25519", "aes128gcm16", "", 0, true},
	} {
		ours, theirs := mustParse(t, tc.proto, tc.ours), mustParse(t, tc.proto, tc.theirs)
		theirs[len(theirs)-1].SPI = []byte{1, 2, 3, 4}
		sel, ok := SelectProposal(ours, theirs)
		if ok == tc.noneAcceptable {
			t.Errorf("%q vs %q: ok=%v", tc.ours, tc.theirs, ok)
			continue
		}
		if !ok {
			continue
		}
		if int(sel.Num) == len(theirs) && string(sel.SPI) != "\x01\x02\x03\x04" {
			t.Errorf("%q vs %q: SPI %x not taken from the chosen offer", tc.ours, tc.theirs, sel.SPI)
		}
		if sel.String() != tc.want || sel.Num != tc.wantNum {
			t.Errorf("%q vs %q: chose #%d %q, want #%d %q", tc.ours, tc.theirs, sel.Num, sel.String(), tc.wantNum, tc.want)
		}
	}
}
