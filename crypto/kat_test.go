package crypto

// Known-answer tests from published vectors. Every expected byte below is
// copied from the document named in the entry's comment; none was computed
// with this package. The hex is laid out the way the documents print it.
//
//   - draft-mcgrew-gcm-test-01 section 4: complete AES-GCM-ESP (RFC 4106) and
//     AES-GMAC-ESP (RFC 4543) packets. The draft does not number its cases;
//     they are numbered here in the order they appear, with the draft's page.
//   - RFC 3602 section 4: AES-CBC, cases 1-4 (raw CBC) and 5-8 (ESP packets,
//     encryption only, so only the IV and ciphertext are published).
//   - RFC 4868 section 2.7.2: the AUTH_HMAC_SHA2_*_* authenticators, with
//     Erratum 1785 (verified) applied to AUTH512-4, whose key the RFC prints
//     as 80 bytes; the published output belongs to the corrected 64-byte key.
//   - RFC 4231 section 4: HMAC-SHA-256/384/512 with keys of other lengths,
//     through the hash integFor picks.
//   - RFC 7634 Appendix A: the ESP ChaCha20-Poly1305 example (no ESN: its
//     AAD is the 8 bytes SPI | sequence number).

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// unhex decodes hex that may contain whitespace, as the RFCs print it.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// hexOf is for vectors that the documents give as ASCII text.
func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }

// aeadKAT is a complete ESP packet from a combined-mode transform.
type aeadKAT struct {
	name  string
	encr  EncrID
	key   string // the cipher key without salt
	spi   uint32
	seq   uint64 // the full sequence number as published (8 octets means ESN)
	esn   bool
	nonce string // salt (4 bytes) || explicit IV (8 bytes)
	plain string // the GCM plaintext, or for GMAC the authenticated payload
	aad   string
	// packet is the complete ESP packet: SPI, low sequence bits, IV,
	// ciphertext (or for GMAC the payload in the clear), ICV.
	packet string
}

var aeadKATs = []aeadKAT{
	{
		// draft-mcgrew-gcm-test-01 section 4, case 1 (page 7): AES-128, ESN.
		name: "mcgrew-gcm-1", encr: ENCR_AES_GCM_16,
		key: "4c80cdefbb5d10da906ac73c3613a634",
		spi: 0x00004321, seq: 0x8765432100000000, esn: true,
		nonce: "2e443b684956ed7e3b244cfe",
		plain: `45000048699a000080114db7c0a80102
		        c0a801010a9bf15638d3010000010000
		        00000000045f736970045f7564700373
		        69700963796265726369747902646b00
		        0021000101020201`,
		aad: "000043218765432100000000",
		packet: `00004321000000004956ed7e3b244cfe
		         fecf537e729d5b07dc30df528dd22b76
		         8d1b98736696a6fd348509fa13ceac34
		         cfa2436f14a3f3cf65925bf1f4a13c5d
		         15b21e1884f5ff6247aeabb786b93bce
		         61bc17d768fd9732459018148f6cbe72
		         2fd04796562dfdb4`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 2 (page 8): AES-128.
		name: "mcgrew-gcm-2", encr: ENCR_AES_GCM_16,
		key:   "feffe9928665731c6d6a8f9467308308",
		spi:   0x0000a5f8,
		seq:   0x0000000a,
		nonce: "cafebabefacedbaddecaf888",
		plain: `4500003e698f000080114dccc0a80102
		        c0a801010a980035002a2343b2d00100
		        00010000000000000373697009637962
		        65726369747902646b00000100010001`,
		aad: "0000a5f80000000a",
		packet: `0000a5f80000000afacedbaddecaf888
		         deb22cd9b07c72c16e3a65beeb8df304
		         a5a5897d33ae530f1ba76d5d114d2a5c
		         3de81827c10e9a4f51330d0eec416642
		         cfbb85a5b47e48a4ec3b9ba95d918bd1
		         83b70d3aa8bc6ee4c309e9d85a41ad4a`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 3 (page 9): AES-256.
		name: "mcgrew-gcm-3", encr: ENCR_AES_GCM_16,
		key: `abbccddef00112233445566778899aab
		      abbccddef00112233445566778899aab`,
		spi:   0x4a2cbfe3,
		seq:   0x00000002,
		nonce: "112233440102030405060708",
		plain: `4500003069a6400080062690c0a80102
		        9389155e0a9e008b2dc57ee000000000
		        7002400020bf0000020405b401010402
		        01020201`,
		aad: "4a2cbfe300000002",
		packet: `4a2cbfe3000000020102030405060708
		         ff425c9b724599df7a3bcd510194e00d
		         6a78107f1b0b1cbf06efae9d65a5d763
		         748a637985771d347f0545659f14e99d
		         ef842d8eb335f4eecfdbf831824b4c49
		         15956c96`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 4 (page 10): AES-128, all-zero key and nonce.
		name: "mcgrew-gcm-4", encr: ENCR_AES_GCM_16,
		key:   "00000000000000000000000000000000",
		spi:   0x00000000,
		seq:   0x00000001,
		nonce: "000000000000000000000000",
		plain: `4500003c99c500008001cb7a40679318
		        010101010800075c0200440061626364
		        65666768696a6b6c6d6e6f7071727374
		        75767761626364656667686901020201`,
		aad: "0000000000000001",
		packet: `00000000000000010000000000000000
		         4688daf2f973a392732909c331d56d60
		         f694abaa414b5e7ff5fdcdfff5e9a284
		         456476492719ffb64de7d9dca1e1d894
		         bc3bd57873ed4d181d19d4d5c8c18af3
		         f821d496eeb096e98ad2b69e4799c71d`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 5 (page 11): AES-128, ESN.
		name: "mcgrew-gcm-5", encr: ENCR_AES_GCM_16,
		key: "3de09874b388e6491988d0c3607eae1f",
		spi: 0x42f67e3f, seq: 0x1010101010101010, esn: true,
		nonce: "57690e434e280000a2fca1a3",
		plain: `4500003c99c300008001cb7c40679318
		        010101010800085c0200430061626364
		        65666768696a6b6c6d6e6f7071727374
		        75767761626364656667686901020201`,
		aad: "42f67e3f1010101010101010",
		packet: `42f67e3f101010104e280000a2fca1a3
		         fba2caa4853cf9f0f22cb10d86dd83b0
		         fec75691cf1a04b00d1138ec9c357917
		         65acbd8701ad79845bf9fe3fba487bc9
		         1755e6662b4c8d0d1f5e22739530320a
		         e0d731cc978ecafaeae88f00e80d6e48`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 6 (page 12): AES-128, ESN, 28-octet plaintext.
		name: "mcgrew-gcm-6", encr: ENCR_AES_GCM_16,
		key: "3de09874b388e6491988d0c3607eae1f",
		spi: 0x42f67e3f, seq: 0x1010101010101010, esn: true,
		nonce: "57690e434e280000a2fca1a3",
		plain: `4500001c42a200008001441f406793b6
		        e00000020a00f5ff01020201`,
		aad: "42f67e3f1010101010101010",
		packet: `42f67e3f101010104e280000a2fca1a3
		         fba2ca845e5df9f0f22c3e6e86dd831e
		         1fc65792cd1af9130e1379ed369f071f
		         35e034be95f112e4e7d05d35`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 7 (page 12): AES-192.
		name: "mcgrew-gcm-7", encr: ENCR_AES_GCM_16,
		key: `feffe9928665731c6d6a8f9467308308
		      feffe9928665731c`,
		spi:   0x0000a5f8,
		seq:   0x0000000a,
		nonce: "cafebabefacedbaddecaf888",
		plain: `45000028a4ad4000400678800a01038f
		        0a010612802306b8cb712602dd6bb03e
		        501016d075680001`,
		aad: "0000a5f80000000a",
		packet: `0000a5f80000000afacedbaddecaf888
		         a5b1f8066029aea40e598b8122de0242
		         0938b3ab33f828e687b8858b5bfbdbd0
		         315b27452144cc7795457b9652037f53
		         18027b5b4cd7a636`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 8 (page 13): AES-128, ESN with zero high bits.
		name: "mcgrew-gcm-8", encr: ENCR_AES_GCM_16,
		key: "abbccddef00112233445566778899aab",
		spi: 0x00000100, seq: 0x0000000000000001, esn: true,
		nonce: "decaf888cafedebaceface74",
		plain: `4500004933ba00007f119106c3fb1d10
		        c2b1d326c02831ce0035dd7b800302d5
		        00004e20001e8c18d75b81dc91baa047
		        6b91b924b280389d92c963bac046ec95
		        9b6266c04722b14923010101`,
		aad: "000001000000000000000001",
		packet: `0000010000000001cafedebaceface74
		         18a6fd42f72cbf4ab2a2ea901f73d814
		         e3e7f243d95412e1c349c1d2fbec168f
		         9190feebaf2cb01984e65863965d7472
		         b79da345e0e780191f0d2f0e0f496c22
		         6f2127b27db35724e7845d68651f57e6
		         5f354f75ff17015769623436`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 9 (page 14): AES-256, ESN.
		name: "mcgrew-gcm-9", encr: ENCR_AES_GCM_16,
		key: `abbccddef00112233445566778899aab
		      abbccddef00112233445566778899aab`,
		spi: 0x17405e67, seq: 0x156f3126dd0db99b, esn: true,
		nonce: "73616c74616e640169766563",
		plain: `45080028732c00004006e9f90a010612
		        0a01038f06b88023dd6bafbecb712602
		        50101f646d540001`,
		aad: "17405e67156f3126dd0db99b",
		packet: `17405e67dd0db99b616e640169766563
		         f2d69ecdbd5a0d5b8d5ef38bad4da58d
		         1f278fde98ef67549d524a3018d9a57f
		         f4d3a31ce673119e451626c2415771e3
		         b7eebca614c89b35`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 10 (page 15): AES-128, ESN.
		name: "mcgrew-gcm-10", encr: ENCR_AES_GCM_16,
		key: "3de09874b388e6491988d0c3607eae1f",
		spi: 0x42f67e3f, seq: 0x1010101010101010, esn: true,
		nonce: "57690e434e280000a2fca1a3",
		plain: `45000049333e00007f119182c3fb1d10
		        c2b1d326c02831ce0035cb458003025b
		        000001e0001e8c18d65759d52284a035
		        2c71475c8880391c764d6e5ee0496b32
		        5ae270c03899493915010101`,
		aad: "42f67e3f1010101010101010",
		packet: `42f67e3f101010104e280000a2fca1a3
		         fba2cad12fc1f9f00d3cebf305410db8
		         3d7784b607323d220f24b0a97d541828
		         00cadb0f68d99ef0e0c0c89ae9bea888
		         4e52d65bc1afd0740f742444747b5b39
		         ab533163aad4550ee5160975cdb608c5
		         769189609763b8e18caa81e2`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 11 (page 16): AES-256, ESN.
		name: "mcgrew-gcm-11", encr: ENCR_AES_GCM_16,
		key: `abbccddef00112233445566778899aab
		      abbccddef00112233445566778899aab`,
		spi: 0x17405e67, seq: 0x156f3126dd0db99b, esn: true,
		nonce: "73616c74616e640169766563",
		plain: `636973636f0172756c65730174686501
		        6e6574776501646566696e6501746865
		        746563686e6f6c6f6769657301746861
		        7477696c6c01646566696e65746f6d6f
		        72726f7701020201`,
		aad: "17405e67156f3126dd0db99b",
		packet: `17405e67dd0db99b616e640169766563
		         d4b7ed86a1777f2ea13d6973d324c69e
		         7b43f826fb56831226508bebd2dceb18
		         d0a6df10e5487df074113e14c641024e
		         3e6773d91a62ee429b043a10e3efe6b0
		         12a49363412364f8c0cac587f249e56b
		         11e24f30e44ccc76`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 12 (page 17): AES-128, sequence number ffffffff, 4-octet plaintext.
		name: "mcgrew-gcm-12", encr: ENCR_AES_GCM_16,
		key:   "7d773d00c144c525ac619d18c84a3f47",
		spi:   0x335467ae,
		seq:   0xffffffff,
		nonce: "d966426743457e9182443bc6",
		plain: "01020201",
		aad:   "335467aeffffffff",
		packet: `335467aeffffffff43457e9182443bc6
		         437f866bcb3f699fe9b0822bac961c45
		         04bef270`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 13 (page 17): AES-128, ESN.
		name: "mcgrew-gcm-13", encr: ENCR_AES_GCM_16,
		key: "abbccddef00112233445566778899aab",
		spi: 0x00000100, seq: 0x0000000000000001, esn: true,
		nonce: "decaf888cafedebaceface74",
		plain: `746f016265016f72016e6f7401746f01
		        62650001`,
		aad: "000001000000000000000001",
		packet: `0000010000000001cafedebaceface74
		         29c9fc69a197d038ccdd14e2ddfcaa05
		         43332164412503524303ed3c6c5f2838
		         43af8c3e`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 14 (page 18): AES-256, ESN ffffffffffffffff.
		name: "mcgrew-gcm-14", encr: ENCR_AES_GCM_16,
		key: `6c6567616c697a656d6172696a75616e
		      61616e64646f69746265666f72656961`,
		spi: 0x796b6963, seq: 0xffffffffffffffff, esn: true,
		nonce: "7475726e333021696765746d",
		plain: `45000030da3a00008001df3bc0a80005
		        c0a800010800c6cd0200070061626364
		        65666768696a6b6c6d6e6f7071727374
		        01020201`,
		aad: "796b6963ffffffffffffffff",
		packet: `796b6963ffffffff333021696765746d
		         f97ab2aa356d8edce17644ac8c78e25d
		         d24dedbb29ebf1b64a274b39b49c3a86
		         4cd3d78ca4ae68a32b42458fb57dbe82
		         1dcc63b9d0937ba2945f669368661a32
		         9fb4c053`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 15 (page 19): AES-GMAC-ESP (RFC 4543), AES-128.
		// The whole packet up to the ICV is AAD and travels in the clear.
		name: "mcgrew-gmac-15", encr: ENCR_NULL_AUTH_AES_GMAC,
		key:   "4c80cdefbb5d10da906ac73c3613a634",
		spi:   0x00004321,
		seq:   0x00000007,
		nonce: "22433c640000000000000000",
		plain: `45000030da3a00008001df3bc0a80005
		        c0a800010800c6cd0200070061626364
		        65666768696a6b6c6d6e6f7071727374
		        01020201`,
		aad: `00004321000000070000000000000000
		      45000030da3a00008001df3bc0a80005
		      c0a800010800c6cd0200070061626364
		      65666768696a6b6c6d6e6f7071727374
		      01020201`,
		packet: `00004321000000070000000000000000
		         45000030da3a00008001df3bc0a80005
		         c0a800010800c6cd0200070061626364
		         65666768696a6b6c6d6e6f7071727374
		         01020201f2a9a836e155106aa8dcd618
		         e4099aaa`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 16 (page 20): AES-128, ESN.
		name: "mcgrew-gcm-16", encr: ENCR_AES_GCM_16,
		key: "3de09874b388e6491988d0c3607eae1f",
		spi: 0x3f7ef642, seq: 0x1010101010101010, esn: true,
		nonce: "57690e434e280000a2fca1a3",
		plain: `45000030da3a00008001df3bc0a80005
		        c0a800010800c6cd0200070061626364
		        65666768696a6b6c6d6e6f7071727374
		        01020201`,
		aad: "3f7ef6421010101010101010",
		packet: `3f7ef642101010104e280000a2fca1a3
		         fba2caa8c6c5f9f0f22ca54a061210ad
		         3f6e5791cf1aca210d117cec9c357917
		         65acbd8701ad79845bf9fe3fba487bc9
		         6321930684eecadb56912546e7a95c97
		         40d7cb05`,
	},
	{
		// draft-mcgrew-gcm-test-01 section 4, case 17 (page 21): AES-128, ESN.
		name: "mcgrew-gcm-17", encr: ENCR_AES_GCM_16,
		key: "4c80cdefbb5d10da906ac73c3613a634",
		spi: 0x00004321, seq: 0x8765432100000007, esn: true,
		nonce: "22433c644855ec7d3a234bfd",
		plain: `0800c6cd020007006162636465666768
		        696a6b6c6d6e6f707172737401020201`,
		aad: "000043218765432100000007",
		packet: `00004321000000074855ec7d3a234bfd
		         74752e8aeb5d873cd7c0f4acc36c4bff
		         84b7d7b98f0ca8b6acda6894bc619069
		         ef9cbc28fe1b56a7c4e0d58c86cd2bc0`,
	},
	{
		// RFC 7634 Appendix A: ESP ChaCha20-Poly1305. The AAD is 8 bytes, so
		// the example does not use ESN. The packet is SPI, sequence number,
		// IV, then the published ciphertext and tag.
		name: "rfc7634-A", encr: ENCR_CHACHA20_POLY1305,
		key: `80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f
		      90 91 92 93 94 95 96 97 98 99 9a 9b 9c 9d 9e 9f`,
		spi:   0x01020304,
		seq:   5,
		nonce: "a0 a1 a2 a3 10 11 12 13 14 15 16 17",
		plain: `45 00 00 54 a6 f2 00 00 40 01 e7 78 c6 33 64 05
		        c0 00 02 05 08 00 5b 7a 3a 08 00 00 55 3b ec 10
		        00 07 36 27 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13
		        14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 20 21 22 23
		        24 25 26 27 28 29 2a 2b 2c 2d 2e 2f 30 31 32 33
		        34 35 36 37 01 02 02 04`,
		aad: "01 02 03 04 00 00 00 05",
		packet: `01 02 03 04 00 00 00 05 10 11 12 13 14 15 16 17
		         24 03 94 28 b9 7f 41 7e 3c 13 75 3a 4f 05 08 7b
		         67 c3 52 e6 a7 fa b1 b9 82 d4 66 ef 40 7a e5 c6
		         14 ee 80 99 d5 28 44 eb 61 aa 95 df ab 4c 02 f7
		         2a a7 1e 7c 4c 4f 64 c9 be fe 2f ac c6 38 e8 f3
		         cb ec 16 3f ac 46 9b 50 27 73 f6 fb 94 e6 64 da
		         91 65 b8 28 29 f6 41 e0
		         76 aa a8 26 6b 7f b0 f7 b1 1b 36 99 07 e1 ad 43`,
	},
}

// katRoom is headroom before the ESP header: AES-GMAC with ESN needs 4 bytes.
const katRoom = 4

// withRoom returns pkt copied after katRoom bytes of a recognisable filler.
func withRoom(pkt []byte) []byte {
	buf := bytes.Repeat([]byte{0xee}, katRoom+len(pkt))
	copy(buf[katRoom:], pkt)
	return buf
}

// assertOpenFails opens a copy of pkt and wants ErrAuth and no plaintext.
func assertOpenFails(t *testing.T, e *ESP, s *Scratch, pkt []byte, hi uint32, esn bool, what string) {
	t.Helper()
	pt, err := e.Open(s, withRoom(pkt), katRoom, hi, esn)
	if !errors.Is(err, ErrAuth) {
		t.Errorf("%s: Open = %v, want ErrAuth", what, err)
	}
	if pt != nil {
		t.Errorf("%s: Open released %d bytes of plaintext on failure", what, len(pt))
	}
}

// assertTamperFails flips one bit at each of the given offsets of a valid
// packet, one at a time, and wants every Open to fail.
func assertTamperFails(t *testing.T, e *ESP, s *Scratch, pkt []byte, hi uint32, esn bool, at map[string]int) {
	t.Helper()
	for what, i := range at {
		bad := append([]byte(nil), pkt...)
		bad[i] ^= 0x01
		assertOpenFails(t, e, s, bad, hi, esn, "bit flipped in "+what)
	}
}

func TestKATAEAD(t *testing.T) {
	for _, v := range aeadKATs {
		t.Run(v.name, func(t *testing.T) {
			s := NewScratch()
			nonce := unhex(t, v.nonce)
			salt, iv := nonce[:saltLen], nonce[saltLen:]
			plain := unhex(t, v.plain)
			aad := unhex(t, v.aad)
			want := unhex(t, v.packet)
			hi := uint32(v.seq >> 32)

			e, err := NewESP(Config{Encr: v.encr, EncrKey: append(unhex(t, v.key), salt...)})
			if err != nil {
				t.Fatalf("NewESP: %v", err)
			}
			if len(want) != e.Overhead()+len(plain) {
				t.Fatalf("vector: packet is %d bytes, plaintext %d + overhead %d", len(want), len(plain), e.Overhead())
			}
			if !bytes.Equal(want[HeaderLen:HeaderLen+aeadIVLen], iv) {
				t.Fatalf("vector: packet IV %x, nonce IV %x", want[HeaderLen:HeaderLen+aeadIVLen], iv)
			}

			// (a) Seal with the published IV reproduces the packet byte for byte.
			buf := withRoom(make([]byte, len(want)))
			binary.BigEndian.PutUint32(buf[katRoom+espSPIOff:], v.spi)
			binary.BigEndian.PutUint32(buf[katRoom+espSeqOff:], uint32(v.seq))
			copy(buf[katRoom+HeaderLen+e.IVLen():], plain)
			if err := e.seal(s, buf, katRoom, v.seq, v.esn, iv); err != nil {
				t.Fatalf("seal: %v", err)
			}
			if got := buf[katRoom:]; !bytes.Equal(got, want) {
				t.Errorf("seal:\n got %x\nwant %x", got, want)
			}
			if !bytes.Equal(buf[:katRoom], bytes.Repeat([]byte{0xee}, katRoom)) {
				t.Errorf("seal changed the headroom: %x", buf[:katRoom])
			}

			// The AAD we build is the one the document gives.
			ptEnd := len(want) - e.ICVLen()
			switch e.kind {
			case kindAEAD:
				if got := e.aeadAAD(s, want, hi, v.esn); !bytes.Equal(got, aad) {
					t.Errorf("AAD %x, want %x", got, aad)
				}
			case kindGMAC:
				b := withRoom(want)
				got, ok := e.gmacAAD(s, b, katRoom, ptEnd, hi, v.esn)
				if !ok || !bytes.Equal(got, aad) {
					t.Errorf("GMAC AAD %x (ok=%v), want %x", got, ok, aad)
				}
				e.gmacRestore(s, b, katRoom, v.esn)
				if !bytes.Equal(b[katRoom:], want) {
					t.Errorf("gmacRestore left %x", b[katRoom:])
				}
			default:
				t.Fatalf("unexpected kind %d", e.kind)
			}

			// (b) Open of the published packet gives the published plaintext.
			pt, err := e.Open(s, withRoom(want), katRoom, hi, v.esn)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(pt, plain) {
				t.Errorf("Open:\n got %x\nwant %x", pt, plain)
			}

			// (c) One flipped bit anywhere that is authenticated must fail.
			assertTamperFails(t, e, s, want, hi, v.esn, map[string]int{
				"SPI":                0,
				"sequence number":    espSeqOff + 3,
				"IV (first byte)":    HeaderLen,
				"IV (last byte)":     HeaderLen + aeadIVLen - 1,
				"ciphertext (first)": HeaderLen + aeadIVLen,
				"ciphertext (last)":  ptEnd - 1,
				"ICV (first byte)":   ptEnd,
				"ICV (last byte)":    len(want) - 1,
			})
			if v.esn {
				assertOpenFails(t, e, s, want, hi^0x00000001, true, "high sequence bits, low bit flipped")
				assertOpenFails(t, e, s, want, hi^0x80000000, true, "high sequence bits, top bit flipped")
			} else if _, err := e.Open(s, withRoom(want), katRoom, hi+1, false); err != nil {
				t.Errorf("without ESN the high sequence bits must not matter: Open = %v", err)
			}
		})
	}
}

// cbcKAT is an RFC 3602 vector: key, IV, the plaintext exactly as the RFC
// lays it out (for the ESP cases with padding, pad length and next header)
// and the ciphertext.
type cbcKAT struct {
	name  string
	key   string
	spi   uint32
	seq   uint32
	iv    string
	plain string
	ct    string
}

var cbcKATs = []cbcKAT{
	{
		// RFC 3602 section 4, Case #1: 16 bytes (1 block), AES-128 ("Single block msg").
		name:  "rfc3602-1",
		key:   "06a9214036b8a15b512e03d534120006",
		spi:   1,
		seq:   1,
		iv:    "3dafba429d9eb430b422da802c9fac41",
		plain: hexOf("Single block msg"),
		ct:    "e353779c1079aeb82708942dbe77181a",
	},
	{
		// RFC 3602 section 4, Case #2: 32 bytes (2 blocks), AES-128.
		name: "rfc3602-2",
		key:  "c286696d887c9aa0611bbb3e2025a45a",
		spi:  1,
		seq:  2,
		iv:   "562e17996d093d28ddb3ba695a2e6f58",
		plain: `000102030405060708090a0b0c0d0e0f
		        101112131415161718191a1b1c1d1e1f`,
		ct: `d296cd94c2cccf8a3a863028b5e1dc0a
		     7586602d253cfff91b8266bea6d61ab1`,
	},
	{
		// RFC 3602 section 4, Case #3: 48 bytes (3 blocks), AES-128.
		name:  "rfc3602-3",
		key:   "6c3ea0477630ce21a2ce334aa746c2cd",
		spi:   1,
		seq:   3,
		iv:    "c782dc4c098c66cbd9cd27d825682c81",
		plain: hexOf("This is a 48-byte message (exactly 3 AES blocks)"),
		ct: `d0a02b3836451753d493665d33f0e886
		     2dea54cdb293abc7506939276772f8d5
		     021c19216bad525c8579695d83ba2684`,
	},
	{
		// RFC 3602 section 4, Case #4: 64 bytes (4 blocks), AES-128.
		name: "rfc3602-4",
		key:  "56e47a38c5598974bc46903dba290349",
		spi:  1,
		seq:  4,
		iv:   "8ce82eefbea0da3c44699ed7db51b7d9",
		plain: `a0a1a2a3a4a5a6a7a8a9aaabacadaeaf
		        b0b1b2b3b4b5b6b7b8b9babbbcbdbebf
		        c0c1c2c3c4c5c6c7c8c9cacbcccdcecf
		        d0d1d2d3d4d5d6d7d8d9dadbdcdddedf`,
		ct: `c30e32ffedc0774e6aff6af0869f71aa
		     0f3af07a9a31a9c684db207eb0ef8e4e
		     35907aa632c3ffdf868bb7b29d3d46ad
		     83ce9f9a102ee99d49a53e87f4c3da55`,
	},
	{
		// RFC 3602 section 4, Case #5: transport-mode ESP (ping 192.168.123.100).
		// Data, then padding 01..0e, pad length 0e, next header 01 (ICMP).
		name: "rfc3602-5",
		key:  "90d382b4 10eeba7a d938c46c ec1a82bf",
		spi:  0x4321,
		seq:  1,
		iv:   "e96e8c08 ab465763 fd098d45 dd3ff893",
		plain: `08000ebd a70a0000 8e9c083d b95b0700 08090a0b 0c0d0e0f 10111213 14151617
		        18191a1b 1c1d1e1f 20212223 24252627 28292a2b 2c2d2e2f 30313233 34353637
		        01020304 05060708 090a0b0c 0d0e0e01`,
		ct: `f663c25d 325c18c6 a9453e19 4e120849 a4870b66 cc6b9965 330013b4 898dc856
		     a4699e52 3a55db08 0b59ec3a 8e4b7e52 775b07d1 db34ed9c 538ab50c 551b874a
		     a269add0 47ad2d59 13ac19b7 cfbad4a6`,
	},
	{
		// RFC 3602 section 4, Case #6: transport-mode ESP (ping -p 77 -s 20 192.168.123.100).
		// Data, then padding 01 02, pad length 02, next header 01 (ICMP).
		name: "rfc3602-6",
		key:  "90d382b4 10eeba7a d938c46c ec1a82bf",
		spi:  0x4321,
		seq:  8,
		iv:   "69d08df7 d203329d b093fc49 24e5bd80",
		plain: `0800b5e8 a80a0500 a69c083d 0b660e00 77777777 77777777 77777777
		        0102 02 01`,
		ct: `f5199588 1ec4e0c4 488987ce 742e8109 689bb379 d2d750c0 d915dca3 46a89f75`,
	},
	{
		// RFC 3602 section 4, Case #7: tunnel-mode ESP (ping 192.168.123.200).
		// Inner IP packet, then padding 01..0a, pad length 0a, next header 04 (IP-in-IP).
		name: "rfc3602-7",
		key:  "01234567 89abcdef 01234567 89abcdef",
		spi:  0x8765,
		seq:  2,
		iv:   "f4e76524 4f6407ad f13dc138 0f673f37",
		plain: `45000054 09040000 4001f988 c0a87b03 c0a87bc8 08009f76 a90a0100 b49c083d
		        02a20400 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f 20212223
		        24252627 28292a2b 2c2d2e2f 30313233 34353637
		        01020304 05060708 090a 0a 04`,
		ct: `773b5241 a4c44922 5e4f3ce5 ed611b0c 237ca96c f74a9301 3c1b0ea1 a0cf70f8
		     e4ecaec7 8ac53aad 7a0f022b 859243c6 47752e94 a859352b 8a4d4d2d ecd136e5
		     c177f132 ad3fbfb2 201ac990 4c74ee0a 109e0ca1 e4dfe9d5 a100b842 f1c22f0d`,
	},
	{
		// RFC 3602 section 4, Case #8: tunnel-mode ESP (ping -p ff -s 40 192.168.123.200).
		// Inner IP packet, then padding 01..0a, pad length 0a, next header 04 (IP-in-IP).
		name: "rfc3602-8",
		key:  "01234567 89abcdef 01234567 89abcdef",
		spi:  0x8765,
		seq:  5,
		iv:   "85d47224 b5f3dd5d 2101d4ea 8dffab22",
		plain: `45000044 090c0000 4001f990 c0a87b03 c0a87bc8 0800d63c aa0a0200 c69c083d
		        a3de0300 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff
		        ffffffff
		        01020304 05060708 090a 0a 04`,
		ct: `15b92683 819596a8 047232cc 00f7048f e45318e1 1f8a0f62 ede3c3fc 61203bb5
		     0f980a08 c9843fd3 a1b06d5c 07ff9639 b7eb7dfb 3512e5de 435e7207 ed971ef3
		     d2726d9b 5ef6affc 6d17a0de cbb13892`,
	},
}

// TestKATAESCBC runs the RFC 3602 vectors through ESP with ENCR_AES_CBC and
// AUTH_HMAC_SHA2_256_128. RFC 3602 publishes no ICV (its ESP cases have no
// integrity), so only the IV and ciphertext are compared with the RFC; the
// ICV is checked against RFC 4303 section 2.8 coverage with crypto/hmac.
func TestKATAESCBC(t *testing.T) {
	integKey := bytes.Repeat([]byte{0x42}, 32)
	for _, v := range cbcKATs {
		t.Run(v.name, func(t *testing.T) {
			s := NewScratch()
			iv, plain, ct := unhex(t, v.iv), unhex(t, v.plain), unhex(t, v.ct)
			if len(plain) != len(ct) {
				t.Fatalf("vector: %d bytes of plaintext, %d of ciphertext", len(plain), len(ct))
			}
			e, err := NewESP(Config{Encr: ENCR_AES_CBC, EncrKey: unhex(t, v.key), Integ: AUTH_HMAC_SHA2_256_128, IntegKey: integKey})
			if err != nil {
				t.Fatalf("NewESP: %v", err)
			}
			ptOff := HeaderLen + e.IVLen()
			ptEnd := ptOff + len(plain)
			header := make([]byte, HeaderLen)
			binary.BigEndian.PutUint32(header[espSPIOff:], v.spi)
			binary.BigEndian.PutUint32(header[espSeqOff:], v.seq)

			// (a) Seal with the RFC's IV: the IV and ciphertext are the RFC's.
			buf := make([]byte, ptEnd+e.ICVLen())
			copy(buf, header)
			copy(buf[ptOff:], plain)
			if err := e.seal(s, buf, 0, uint64(v.seq), false, iv); err != nil {
				t.Fatalf("seal: %v", err)
			}
			if !bytes.Equal(buf[:HeaderLen], header) {
				t.Errorf("seal changed the header: %x", buf[:HeaderLen])
			}
			if !bytes.Equal(buf[HeaderLen:ptOff], iv) {
				t.Errorf("IV %x, want %x", buf[HeaderLen:ptOff], iv)
			}
			if !bytes.Equal(buf[ptOff:ptEnd], ct) {
				t.Errorf("ciphertext:\n got %x\nwant %x", buf[ptOff:ptEnd], ct)
			}
			icv := append([]byte(nil), buf[ptEnd:]...)
			m := hmac.New(sha256.New, integKey)
			m.Write(header)
			m.Write(iv)
			m.Write(ct)
			if want := m.Sum(nil)[:16]; !bytes.Equal(icv, want) {
				t.Errorf("ICV %x is not HMAC-SHA-256-128 over header, IV and ciphertext (%x)", icv, want)
			}

			// (b) Open the packet built from the RFC's IV and ciphertext.
			pkt := append(append(append(append([]byte(nil), header...), iv...), ct...), icv...)
			pt, err := e.Open(s, withRoom(pkt), katRoom, 0, false)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(pt, plain) {
				t.Errorf("Open:\n got %x\nwant %x", pt, plain)
			}

			// (c) Tampering anywhere fails before anything is decrypted.
			assertTamperFails(t, e, s, pkt, 0, false, map[string]int{
				"SPI":                1,
				"sequence number":    espSeqOff + 3,
				"IV (first byte)":    HeaderLen,
				"IV (last byte)":     ptOff - 1,
				"ciphertext (first)": ptOff,
				"ciphertext (last)":  ptEnd - 1,
				"ICV (first byte)":   ptEnd,
				"ICV (last byte)":    len(pkt) - 1,
			})
		})
	}
}

// hmacKAT is an RFC 4868 section 2.7.2 authenticator test case.
type hmacKAT struct {
	name  string
	integ IntegID
	key   string
	data  string
	auth  string // the truncated authenticator the RFC prints
}

var (
	jefe         = hexOf("Jefe")
	whatDoYaWant = hexOf("what do ya want for nothing?")
	rfc4868KATs  = []hmacKAT{
		// RFC 4868 section 2.7.2.1, Test Case AUTH256-1.
		{"AUTH256-1", AUTH_HMAC_SHA2_256_128, strings.Repeat("0b", 32), hexOf("Hi There"),
			"198a607eb44bfbc69903a0f1cf2bbdc5"},
		// RFC 4868 section 2.7.2.1, Test Case AUTH256-2.
		{"AUTH256-2", AUTH_HMAC_SHA2_256_128, strings.Repeat(jefe, 8), whatDoYaWant,
			"167f928588c5cc2eef8e3093caa0e87c"},
		// RFC 4868 section 2.7.2.1, Test Case AUTH256-3.
		{"AUTH256-3", AUTH_HMAC_SHA2_256_128, strings.Repeat("aa", 32), strings.Repeat("dd", 50),
			"cdcb1220d1ecccea91e53aba3092f962"},
		// RFC 4868 section 2.7.2.1, Test Case AUTH256-4.
		{"AUTH256-4", AUTH_HMAC_SHA2_256_128,
			`0102030405060708090a0b0c0d0e0f10
			 1112131415161718191a1b1c1d1e1f20`, strings.Repeat("cd", 50),
			"372efcf9b40b35c2115b1346903d2ef4"},
		// RFC 4868 section 2.7.2.2, Test Case AUTH384-1.
		{"AUTH384-1", AUTH_HMAC_SHA2_384_192, strings.Repeat("0b", 48), hexOf("Hi There"),
			"b6a8d5636f5c6a7224f9977dcf7ee6c7fb6d0c48cbdee973"},
		// RFC 4868 section 2.7.2.2, Test Case AUTH384-2.
		{"AUTH384-2", AUTH_HMAC_SHA2_384_192, strings.Repeat(jefe, 12), whatDoYaWant,
			"2c7353974f1842fd66d53c452ca42122b28c0b594cfb184d"},
		// RFC 4868 section 2.7.2.2, Test Case AUTH384-3.
		{"AUTH384-3", AUTH_HMAC_SHA2_384_192, strings.Repeat("aa", 48), strings.Repeat("dd", 50),
			"809f439be00274321d4a538652164b53554a508184a0c316"},
		// RFC 4868 section 2.7.2.2, Test Case AUTH384-4 (the key as printed;
		// Erratum 5507, held for document update, does not change the output).
		{"AUTH384-4", AUTH_HMAC_SHA2_384_192,
			`0102030405060708090a0b0c0d0e0f10
			 1112131415161718191a1b1c1d1e1f20
			 0a0b0c0d0e0f10111213141516171819`, strings.Repeat("cd", 50),
			"5b540085c6e6358096532b2493609ed1cb298f774f87bb5c"},
		// RFC 4868 section 2.7.2.3, Test Case AUTH512-1.
		{"AUTH512-1", AUTH_HMAC_SHA2_512_256, strings.Repeat("0b", 64), hexOf("Hi There"),
			"637edc6e01dce7e6742a99451aae82df23da3e92439e590e43e761b33e910fb8"},
		// RFC 4868 section 2.7.2.3, Test Case AUTH512-2.
		{"AUTH512-2", AUTH_HMAC_SHA2_512_256, strings.Repeat(jefe, 16), whatDoYaWant,
			"cb370917ae8a7ce28cfd1d8f4705d6141c173b2a9362c15df235dfb251b15454"},
		// RFC 4868 section 2.7.2.3, Test Case AUTH512-3.
		{"AUTH512-3", AUTH_HMAC_SHA2_512_256, strings.Repeat("aa", 64), strings.Repeat("dd", 50),
			"2ee7acd783624ca9398710f3ee05ae41b9f9b0510c87e49e586cc9bf961733d8"},
		// RFC 4868 section 2.7.2.3, Test Case AUTH512-4, key as corrected by
		// Erratum 1785 (verified): the RFC prints an 80-byte key labelled
		// "64 bytes" with a spurious first row 0a0b..19.
		{"AUTH512-4", AUTH_HMAC_SHA2_512_256,
			`0102030405060708090a0b0c0d0e0f10
			 1112131415161718191a1b1c1d1e1f20
			 2122232425262728292a2b2c2d2e2f30
			 3132333435363738393a3b3c3d3e3f40`, strings.Repeat("cd", 50),
			"5e6688e5a3daec826ca32eaea224eff5e700628947470e13ad01302561bab108"},
	}
)

// TestKATHMACRFC4868 runs the RFC 4868 authenticator vectors through e.mac,
// the code path of the ESP ICV, on ENCR_NULL transforms.
func TestKATHMACRFC4868(t *testing.T) {
	s := NewScratch()
	for _, v := range rfc4868KATs {
		key, want := unhex(t, v.key), unhex(t, v.auth)
		e, err := NewESP(Config{Encr: ENCR_NULL, Integ: v.integ, IntegKey: key})
		if err != nil {
			t.Fatalf("%s: NewESP: %v", v.name, err)
		}
		if e.ICVLen() != len(want) {
			t.Errorf("%s: ICV length %d, RFC 4868 authenticator %d", v.name, e.ICVLen(), len(want))
		}
		m := e.macs.Get().(*macState)
		got := e.mac(s, m, unhex(t, v.data), 0, false)
		if !bytes.Equal(got, want) {
			t.Errorf("%s (%v): got %x, want %x", v.name, v.integ, got, want)
		}
		e.macs.Put(m)
	}
}

// TestKATHMACRFC4868Packet seals and opens ENCR_NULL packets whose
// authenticated bytes are exactly the RFC 4868 AUTH-2 data, "what do ya want
// for nothing?" (28 bytes): without ESN the whole of it is the packet up to
// the ICV (SPI "what", sequence number " do ", 20 bytes of payload); with ESN
// the packet holds the first 24 bytes and "ing?" is the high half of the
// sequence number, which RFC 4303 section 2.2.1 authenticates after the
// packet without sending it. Either way the ICV is the RFC's authenticator.
func TestKATHMACRFC4868Packet(t *testing.T) {
	data := unhex(t, whatDoYaWant)
	hi := binary.BigEndian.Uint32(data[24:28])
	lo := binary.BigEndian.Uint32(data[espSeqOff : espSeqOff+4])
	for _, v := range rfc4868KATs {
		if !strings.HasSuffix(v.name, "-2") {
			continue
		}
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%v", v.name, esn), func(t *testing.T) {
				s := NewScratch()
				e, err := NewESP(Config{Encr: ENCR_NULL, Integ: v.integ, IntegKey: unhex(t, v.key)})
				if err != nil {
					t.Fatalf("NewESP: %v", err)
				}
				authed, seq := data, uint64(lo)
				if esn {
					authed, seq = data[:24], uint64(hi)<<32|uint64(lo)
				}
				ptEnd := len(authed)
				want := append(append([]byte(nil), authed...), unhex(t, v.auth)...)

				// (a) Seal: the ICV is the RFC's authenticator.
				buf := withRoom(make([]byte, len(want)))
				copy(buf[katRoom:], authed)
				if err := e.seal(s, buf, katRoom, seq, esn, nil); err != nil {
					t.Fatalf("seal: %v", err)
				}
				if !bytes.Equal(buf[katRoom:], want) {
					t.Errorf("seal\n got %x\nwant %x", buf[katRoom:], want)
				}

				// (b) Open accepts the packet with the RFC's ICV.
				pt, err := e.Open(s, withRoom(want), katRoom, hi, esn)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if !bytes.Equal(pt, authed[HeaderLen:]) {
					t.Errorf("Open gave %x, want %x", pt, authed[HeaderLen:])
				}

				// (c) Tampering fails.
				assertTamperFails(t, e, s, want, hi, esn, map[string]int{
					"SPI":              0,
					"sequence number":  espSeqOff + 3,
					"payload (first)":  HeaderLen,
					"payload (last)":   ptEnd - 1,
					"ICV (first byte)": ptEnd,
					"ICV (last byte)":  len(want) - 1,
				})
				if esn {
					assertOpenFails(t, e, s, want, hi^0x00000001, true, "high sequence bits, low bit flipped")
					assertOpenFails(t, e, s, want, hi^0x80000000, true, "high sequence bits, top bit flipped")
				}
			})
		}
	}
}

// TestKATHMACRFC4231 checks the hash that integFor picks for each transform
// against RFC 4231 section 4, whose keys are of lengths NewESP rejects, and
// that the truncation is RFC 4868's half of the output.
func TestKATHMACRFC4231(t *testing.T) {
	aa131 := strings.Repeat("aa", 131)
	cases := []struct {
		name      string
		key, data string
		truncated bool // the RFC gives only the first 128 bits (Test Case 5)
		want      [3]string
	}{
		{"4231-1", strings.Repeat("0b", 20), hexOf("Hi There"), false, [3]string{
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			`afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
			 faea9ea9076ede7f4af152e8b2fa9cb6`,
			`87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
			 daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854`,
		}},
		{"4231-2", jefe, whatDoYaWant, false, [3]string{
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			`af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e
			 8e2240ca5e69e2c78b3239ecfab21649`,
			`164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
			 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737`,
		}},
		{"4231-3", strings.Repeat("aa", 20), strings.Repeat("dd", 50), false, [3]string{
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			`88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b
			 2a5ab39dc13814b94e3ab6e101a34f27`,
			`fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39
			 bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb`,
		}},
		{"4231-4", "0102030405060708090a0b0c0d0e0f10111213141516171819", strings.Repeat("cd", 50), false, [3]string{
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			`3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e
			 6801dd23c4a7d679ccf8a386c674cffb`,
			`b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db
			 a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd`,
		}},
		{"4231-5", strings.Repeat("0c", 20), hexOf("Test With Truncation"), true, [3]string{
			"a3b6167473100ee06e0c796c2955552b",
			"3abf34c3503b2a23a46efc619baef897",
			"415fad6271580a531d4179bc891d87a6",
		}},
		{"4231-6", aa131, hexOf("Test Using Larger Than Block-Size Key - Hash Key First"), false, [3]string{
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			`4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6
			 0c2ef6ab4030fe8296248df163f44952`,
			`80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352
			 6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598`,
		}},
		{"4231-7", aa131, hexOf("This is a test using a larger than block-size key and a larger " +
			"than block-size data. The key needs to be hashed before being used by the HMAC algorithm."), false, [3]string{
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			`6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5
			 a678cc31e799176d3860e6110c46523e`,
			`e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944
			 b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58`,
		}},
	}
	transforms := [3]struct {
		id     IntegID
		keyLen int
	}{{AUTH_HMAC_SHA2_256_128, 32}, {AUTH_HMAC_SHA2_384_192, 48}, {AUTH_HMAC_SHA2_512_256, 64}}
	for i, tr := range transforms {
		newHash, trunc, err := integFor(tr.id, tr.keyLen)
		if err != nil {
			t.Fatalf("integFor(%v): %v", tr.id, err)
		}
		if size := newHash().Size(); trunc != size/2 {
			t.Errorf("%v: truncated to %d of %d bytes, RFC 4868 says half", tr.id, trunc, size)
		}
		for _, c := range cases {
			want := unhex(t, c.want[i])
			m := hmac.New(newHash, unhex(t, c.key))
			m.Write(unhex(t, c.data))
			got := m.Sum(nil)
			if c.truncated {
				got = got[:len(want)]
			} else if !bytes.Equal(got[:trunc], want[:trunc]) {
				t.Errorf("RFC %s, %v: truncated ICV %x, want %x", c.name, tr.id, got[:trunc], want[:trunc])
			}
			if !bytes.Equal(got, want) {
				t.Errorf("RFC %s, %v: got %x, want %x", c.name, tr.id, got, want)
			}
		}
	}
}
