package control

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// sampleInit is an IKE_SA_INIT request like strongSwan's: SA with two
// proposals, KE, Ni, NAT detection notifies and a vendor ID.
func sampleInit() *Message {
	return &Message{
		Header: Header{SPIi: 0x0102030405060708, Exchange: IKE_SA_INIT, Flags: FlagInitiator},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{
				{Num: 1, Protocol: ProtoIKE, Transforms: []Transform{
					{Type: TransformENCR, ID: 20, KeyLength: 128},
					{Type: TransformPRF, ID: 5},
					{Type: TransformKE, ID: 31},
				}},
				{Num: 2, Protocol: ProtoIKE, Transforms: []Transform{
					{Type: TransformENCR, ID: 12, KeyLength: 256},
					{Type: TransformINTEG, ID: 12},
					{Type: TransformPRF, ID: 5},
					{Type: TransformKE, ID: 19},
					{Type: TransformKE, ID: 14},
				}},
			}},
			&KE{Group: 31, Data: bytes.Repeat([]byte{0xab}, 32)},
			&Nonce{Data: bytes.Repeat([]byte{0xcd}, 32)},
			&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: bytes.Repeat([]byte{1}, 20)},
			&Notify{NotifyType: NAT_DETECTION_DESTINATION_IP, Data: bytes.Repeat([]byte{2}, 20)},
			&Unknown{PType: PayloadVendorID, Data: []byte("espx")},
		},
	}
}

// sampleAuthInner is what an IKE_AUTH request carries inside SK.
func sampleAuthInner() []Payload {
	return []Payload{
		&ID{IDType: IDFQDN, Data: []byte("gw-a.example.net")},
		&Auth{Method: AuthPSK, Data: bytes.Repeat([]byte{7}, 32)},
		&SA{Proposals: []Proposal{{Num: 1, Protocol: ProtoESP, SPI: []byte{0xc0, 0, 0, 1}, Transforms: []Transform{
			{Type: TransformENCR, ID: 20, KeyLength: 256},
			{Type: TransformESN, ID: ESNYes},
			{Type: TransformESN, ID: ESNNo},
		}}}},
		&TS{Selectors: []TrafficSelector{
			{Start: netip.MustParseAddr("198.51.100.0"), End: netip.MustParseAddr("198.51.100.255"), EndPort: 65535},
			{IPProto: 17, StartPort: 53, EndPort: 53, Start: netip.MustParseAddr("2001:db8::"), End: netip.MustParseAddr("2001:db8::ffff")},
		}},
		&TS{Responder: true, Selectors: []TrafficSelector{
			{Start: netip.MustParseAddr("203.0.113.0"), End: netip.MustParseAddr("203.0.113.255"), EndPort: 65535},
		}},
		&Notify{NotifyType: INITIAL_CONTACT},
		&Delete{Protocol: ProtoESP, SPIs: []uint32{0xc0000001, 0xc0000002}},
		&Delete{Protocol: ProtoIKE},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := sampleInit()
	b := m.Encode()
	if int(binary.BigEndian.Uint32(b[hdrLengthOff:])) != len(b) {
		t.Fatal("length field wrong")
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
	}
	if !bytes.Equal(got.Encode(), b) {
		t.Fatal("re-encoding differs")
	}
	inner := AppendPayloads(nil, sampleAuthInner(), -1)
	ps, err := DecodePayloads(PayloadIDi, inner)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ps, sampleAuthInner()) {
		t.Fatalf("inner payloads changed:\n got %+v\nwant %+v", ps, sampleAuthInner())
	}
}

// nullSealer is an SK "protection" for codec tests: a 4-byte IV of 0xee,
// the plaintext, and a 4-byte ICV of 0xff.
type nullSealer struct{}

func (nullSealer) Overhead(int) int { return 8 }
func (nullSealer) Seal(msg []byte, _ int, pt []byte) ([]byte, error) {
	msg = append(msg, 0xee, 0xee, 0xee, 0xee)
	msg = append(msg, pt...)
	return append(msg, 0xff, 0xff, 0xff, 0xff), nil
}

func TestEncodeEncrypted(t *testing.T) {
	m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}}
	b, err := m.EncodeEncrypted(sampleAuthInner(), nullSealer{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.SK == nil || got.SK.Offset != headerLen || got.SK.First != PayloadIDi || len(got.Payloads) != 0 {
		t.Fatalf("SK %+v, cleartext %v", got.SK, got.Payloads)
	}
	if PayloadType(b[hdrNextOff]) != PayloadSK {
		t.Fatal("header does not name SK")
	}
	body := b[got.SK.Offset+genericHeaderLen+4 : len(b)-4]
	ps, err := DecodePayloads(got.SK.First, body)
	if err != nil || !reflect.DeepEqual(ps, sampleAuthInner()) {
		t.Fatalf("inner: %v %+v", err, ps)
	}
	// Cleartext payloads before SK chain into it.
	m.Payloads = []Payload{&Notify{NotifyType: COOKIE, Data: []byte("cookie-cookie!")}}
	b, err = m.EncodeEncrypted(nil, nullSealer{})
	if err != nil {
		t.Fatal(err)
	}
	got, err = Decode(b)
	if err != nil || got.SK == nil || got.SK.First != PayloadNone || len(got.Payloads) != 1 {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := sampleInit().Encode()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	setLen := func(b []byte) []byte { binary.BigEndian.PutUint32(b[hdrLengthOff:], uint32(len(b))); return b }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:20], ErrMalformed},
		{"length mismatch", good[:len(good)-1], ErrMalformed},
		{"version 3", mod(func(b []byte) []byte { b[hdrVersionOff] = 0x30; return b }), ErrMajorVersion},
		{"payload past end", mod(func(b []byte) []byte { b[headerLen+3] += 200; return b }), ErrMalformed},
		{"payload length 3", mod(func(b []byte) []byte { b[headerLen+2], b[headerLen+3] = 0, 3; return b }), ErrMalformed},
		{"trailing bytes", setLen(append(append([]byte(nil), good...), 0, 0)), ErrMalformed},
		{"unknown critical", setLen(append(mod(func(b []byte) []byte {
			return b[:headerLen]
		}), 0, criticalBit, 0, 4)), ErrCriticalPayload},
		{"short nonce", mod(func(b []byte) []byte {
			m := sampleInit()
			m.Payloads[2] = &Nonce{Data: make([]byte, 8)}
			return m.Encode()
		}), ErrMalformed},
	} {
		b := tc.b
		if tc.name == "unknown critical" {
			b[hdrNextOff] = 200
		}
		if _, err := Decode(b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// An unknown payload without the critical bit is kept, not an error.
	b := setLen(append(append([]byte(nil), good[:headerLen]...), 0, 0, 0, 6, 9, 9))
	b[hdrNextOff] = 200
	m, err := Decode(b)
	if err != nil || len(m.Payloads) != 1 || m.Payloads[0].Type() != 200 {
		t.Fatalf("unknown non-critical: %v %+v", err, m)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sampleInit().Encode())
	enc, _ := (&Message{Header: Header{Exchange: IKE_AUTH}}).EncodeEncrypted(sampleAuthInner(), nullSealer{})
	f.Add(enc)
	f.Add(AppendPayloads(nil, sampleAuthInner(), -1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := Decode(b); err == nil {
			// What decodes re-encodes to a message that decodes to
			// the same thing.
			if m.SK == nil {
				again, err := Decode(m.Encode())
				if err != nil || !reflect.DeepEqual(again.Payloads, m.Payloads) {
					t.Fatalf("re-encode: %v", err)
				}
			}
		}
		if len(b) > 0 {
			ps, err := DecodePayloads(PayloadType(b[0]), b[1:])
			if err == nil {
				re := AppendPayloads(nil, ps, -1)
				again, err := DecodePayloads(PayloadType(b[0]), re)
				if err != nil || !reflect.DeepEqual(again, ps) {
					t.Fatalf("payloads re-encode: %v", err)
				}
			}
		}
	})
}
