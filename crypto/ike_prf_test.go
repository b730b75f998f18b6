package crypto

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

var allPRFs = []PRFID{PRF_HMAC_SHA2_256, PRF_HMAC_SHA2_384, PRF_HMAC_SHA2_512}

func mustPRF(tb testing.TB, id PRFID) PRF {
	tb.Helper()
	p, err := NewPRF(id)
	if err != nil {
		tb.Fatalf("NewPRF(%v): %v", id, err)
	}
	return p
}

// pyIKECheck runs testdata/ike_check.py in the given mode with cases as JSON
// on stdin and decodes its JSON answer into out. It skips the test when
// Debian's python3 is missing, or lacks a module the mode imports.
func pyIKECheck(t *testing.T, mode, needModule string, cases, out any) {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import "+needModule).Run(); err != nil {
		t.Skipf("%s cannot import %s (%v): run make deps (apt-get install python3 python3-cryptography)", py, needModule, err)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/ike_check.py", mode)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("ike_check.py %s: %v\n%s", mode, err, stderr.Bytes())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatalf("ike_check.py %s: bad output (%v): %.200s", mode, err, res)
	}
}

// TestPRFRFC4868 checks Sum against the RFC 4868 section 2.7.2 vectors (in
// kat_test.go), whose keys have the PRFs' preferred key sizes; the PRF
// output is the untruncated HMAC, so the authenticator is its prefix.
func TestPRFRFC4868(t *testing.T) {
	for _, v := range rfc4868KATs {
		id := map[IntegID]PRFID{
			AUTH_HMAC_SHA2_256_128: PRF_HMAC_SHA2_256,
			AUTH_HMAC_SHA2_384_192: PRF_HMAC_SHA2_384,
			AUTH_HMAC_SHA2_512_256: PRF_HMAC_SHA2_512,
		}[v.integ]
		p := mustPRF(t, id)
		want := unhex(t, v.auth)
		got := p.Sum(nil, unhex(t, v.key), unhex(t, v.data))
		if len(got) != p.Size() || !bytes.HasPrefix(got, want) {
			t.Errorf("%s (%v): got %x, want a %d-byte output starting %x", v.name, id, got, p.Size(), want)
		}
	}
}

// TestPRFRFC4231 checks Sum with keys shorter and longer than the hash block,
// RFC 4231 section 4 test cases 1, 2, 6 and 7: prf(Ni | Nr, g^ir) gets keys of
// every length. The data is passed in pieces, as Sum's callers do.
func TestPRFRFC4231(t *testing.T) {
	aa131 := strings.Repeat("aa", 131)
	for _, c := range []struct {
		name, key, data string
		want            [3]string // HMAC-SHA-256, -384, -512
	}{
		{"4231-1", strings.Repeat("0b", 20), hexOf("Hi There"), [3]string{
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			`afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c
			 faea9ea9076ede7f4af152e8b2fa9cb6`,
			`87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde
			 daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854`,
		}},
		{"4231-2", jefe, whatDoYaWant, [3]string{
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			`af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e
			 8e2240ca5e69e2c78b3239ecfab21649`,
			`164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
			 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737`,
		}},
		{"4231-6", aa131, hexOf("Test Using Larger Than Block-Size Key - Hash Key First"), [3]string{
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			`4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6
			 0c2ef6ab4030fe8296248df163f44952`,
			`80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352
			 6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598`,
		}},
		{"4231-7", aa131, hexOf("This is a test using a larger than block-size key and a larger " +
			"than block-size data. The key needs to be hashed before being used by the HMAC algorithm."), [3]string{
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			`6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5
			 a678cc31e799176d3860e6110c46523e`,
			`e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944
			 b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58`,
		}},
	} {
		data := unhex(t, c.data)
		for i, id := range allPRFs {
			p := mustPRF(t, id)
			want := unhex(t, c.want[i])
			got := p.Sum([]byte("prefix"), unhex(t, c.key), data[:3], data[3:])
			if !bytes.Equal(got, append([]byte("prefix"), want...)) {
				t.Errorf("RFC %s, %v: got %x, want prefix|%x", c.name, id, got, want)
			}
		}
	}
}

// ikev2KDFCAVS are NIST CAVS sample vectors for the IKEv2 KDF of SP 800-135
// section 4.1.2, as NSS copied them into gtests/common/testvectors
// (ike-sha256-vectors.h, ike-sha384-vectors.h, ike-sha512-vectors.h, the
// cases NSS numbers 6, 7 and 8: ikeGxy, ikeV2Rekey, ikePlus). DKM is the
// first 132 bytes of prf+(SKEYSEED, Ni | Nr | SPIi | SPIr); the rekey case
// takes SK_d as the first PRF-size bytes of DKM.
var ikev2KDFCAVS = []struct {
	prf                   PRFID
	gir, ni, nr, skeyseed string
	spii, spir, dkm       string
	girNew, skeyseedRekey string
}{
	{
		prf:      PRF_HMAC_SHA2_256,
		gir:      "0f4d257d7a58fc4545c7d7a88119eee5d5c9690c5b4c989171d3abbfd99d1d29",
		ni:       "3f302be1abcb28e1",
		nr:       "8c332ee006064c9b",
		skeyseed: "5f00d1bd2c58ec224b1e6b71fa0f19a1faa7a193952c444411b47c1a9d8ba6fe",
		spii:     "40dac39e1e1a8640",
		spir:     "8619a1cf9a6e4c07",
		dkm: "0b137d669b0947d7d026d593f0305ad401ff0c471357d695778a9c7f4b4869ece98aca531" +
			"188d16041b3bb936d2dbb3b4993a6e768a809160de45d0283f273a6cdf6854379e31be72b" +
			"8d3d1fa990cf9c5b015ca9f918a7df6253c958114a09d4e1c19bdcd4db14b29d98db1a74a" +
			"d405c588662c14a04d0d36aa4ab55e90f8986d12d4aad",
		girNew:        "25f3b12d6f282739256e39bf54eda53b60ffcf379bb7bcc90c27b4c4c578616c",
		skeyseedRekey: "2d63f6debc92048b4fef3889c4c99ca67d6496e0fac14a2bca9a2d6566ff2398",
	},
	{
		prf: PRF_HMAC_SHA2_384,
		gir: "d3288cd87565101e88fe3bad918f31939d8dd26ff1071f8b2d7f447524e58d7c",
		ni:  "fd1b572a8e735591",
		nr:  "6013b0ef88dacd3d",
		skeyseed: "69fe7a1ac94adaeb711295f5fe004b1a8d6a0b65d05692758ce8ad2f7a45f59d7d0b596f5" +
			"1f7dfcf3330061888f6a94f",
		spii: "2116ad07ce61f749",
		spir: "24880e55f11a65b7",
		dkm: "4f904c2025c90c817ea5ff9b662a6fdb445a73b57cdf09eacd379b95e1f03cacb04cd6dee" +
			"da4f952191dd9bc1f7a9502471a648d74dc06d38112de48a42501f6b1a3ad55c2099cd9a6" +
			"48e5f17e5bf3e34bf9b5953decb768a34f875fe2b78dca0c2fcca81ec1a412006dfaed38f" +
			"a06882e61f4c148105fb8e231fdb33c4d484c001721d4",
		girNew: "3358f620539473aee8d07e779764c4c6a9aabddc79a28e136b3bac021dbde44a",
		skeyseedRekey: "e0548c1682e13bce454026b3b1bdf42985b24e4e7408095a7c529de38c3d1fcb04c9fe686" +
			"8042a34c9614c6c99e3fcea",
	},
	{
		prf: PRF_HMAC_SHA2_512,
		gir: "276255c3eaace5c6db32b609aa86c0ef07bba4bf2dc4c262995efd95ca607c3f",
		ni:  "97c41a9b0a03e74c",
		nr:  "a659fd06e1746600",
		skeyseed: "d6e74966b75fd2afab48be319d63d97c8a5d2ffe2e320763a462c664b36c3a944067d867c" +
			"3a55fd8a7e5cca64b22e24415987e15549f09a81b455adaa5303df8",
		spii: "ff43c5c689b95481",
		spir: "e2ba607f30079bb7",
		dkm: "22259105314717dc73c210919ee9cb3ded774dc087e866aa3960404c0ed7b8e78e79b9938" +
			"88388e2e5cb238d4bfcb4cdee9da074a26e329d6c2f2f660cc9c711c941a2fb3d85a2e5d0" +
			"1e579c8f2c9d00fa6fabe76a137b00c7ff1b291899906588c26f073d819063238c4c844f0" +
			"f8d221b65b76dbc9ed6f6368e5dba86b3e81b60eb44a1",
		girNew: "bb4015f7727b35532021336a9e4a6370ac8729b01fbb8f15d52236820fac4709",
		skeyseedRekey: "ecdaf3ccb990abc898a453b03fd56f9975275f150e1e571b0560b3cb2ee67289e82b899cd" +
			"c2129fd821fe8aebea796f190765c25798f5883f923526551f16a4b",
	},
}

// TestIKEv2KDFCAVS runs the SP 800-135 IKEv2 KDF sample vectors through
// DeriveSKEYSEED, PRF.Plus, DeriveIKEKeys (whose seven keys, concatenated in
// RFC 7296 order, must start with DKM) and DeriveRekeySKEYSEED.
func TestIKEv2KDFCAVS(t *testing.T) {
	for _, v := range ikev2KDFCAVS {
		t.Run(v.prf.String(), func(t *testing.T) {
			p := mustPRF(t, v.prf)
			ni, nr := unhex(t, v.ni), unhex(t, v.nr)
			skeyseed := DeriveSKEYSEED(p, ni, nr, unhex(t, v.gir))
			if want := unhex(t, v.skeyseed); !bytes.Equal(skeyseed, want) {
				t.Fatalf("SKEYSEED %x, want %x", skeyseed, want)
			}
			spis := unhex(t, v.spii+v.spir)
			dkm := unhex(t, v.dkm)
			if len(dkm) != 132 {
				t.Fatalf("vector transcription: DKM is %d bytes, the CAVS samples have 132", len(dkm))
			}
			got, err := p.Plus(skeyseed, len(dkm), ni, nr, spis)
			if err != nil || !bytes.Equal(got, dkm) {
				t.Errorf("prf+ = %x, %v\nwant %x", got, err, dkm)
			}

			suite := IKESuite{Encr: ENCR_AES_CBC, EncrKeyBits: 128, Integ: AUTH_HMAC_SHA2_256_128, PRF: v.prf}
			k, err := DeriveIKEKeys(suite, skeyseed, ni, nr, beUint64(t, v.spii), beUint64(t, v.spir))
			if err != nil {
				t.Fatal(err)
			}
			all := bytes.Join([][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr}, nil)
			if !bytes.HasPrefix(all, dkm) {
				t.Errorf("SK_d | ... | SK_pr = %x\nwant it to start with DKM %x", all, dkm)
			}

			rekey := DeriveRekeySKEYSEED(p, dkm[:p.Size()], unhex(t, v.girNew), ni, nr)
			if want := unhex(t, v.skeyseedRekey); !bytes.Equal(rekey, want) {
				t.Errorf("SKEYSEED(Rekey) %x, want %x", rekey, want)
			}
		})
	}
}

// TestSKEYSEEDLongNonces: NSS's SHA-256 case 1, a CAVS sample from the IKEv1
// test whose SKEYID = prf(Ni_b | Nr_b, g^xy) is SKEYSEED's formula, with
// 256-byte nonces: the PRF key is longer than the HMAC block and is hashed.
func TestSKEYSEEDLongNonces(t *testing.T) {
	gxy := "a1ff3dc6cf9b4c04709943cb4ca1f1789bcf360b03f1d027de3ae8ee039e9155"
	want := "750c5c94b9c2ec20b68033e024dadf0fa87e8b48c6561b21c72478451a06583d"
	ni := "b1dee62505b47b223bae14ce7a5b757402ad1587511618d09f94950d47f1d8d4ce86aca12" +
		"d78db9854d86019ad735757ae79d8932ac0c7db842c85060150ca875ea5d47e3cfcb2a059" +
		"22ebb7959d49b9797a2289676ee79a1d9a18b790f87e4771ddaf4be3376057a553162f68f" +
		"e429aca73b07234543801ba2122b1bde82251770d05df813cf556a11ca4dc43ffcb85a97d" +
		"bed16e2fda6985e07e31be6364899e63c507c7c616e5eb7765a53560f76772de43918ba07" +
		"badfe85244dcdcd917cb065afb60e3b7e68b54dd94bfc7c31c8b752892781ed3cc4b7f28f" +
		"bc0ab9af908f5ae1f09f893f80100a7b3135993161b51fbba3bbb24b9f88c6147de82cd6f" +
		"0"
	nr := "f0acfef2ad1f7add0eaafda78c1cf1097d9fc91cb04a7c145069ac426fd164cbe661b1dd2" +
		"df0fb84e19512181f0d8ea50b7860845f332757a8e56d2a3b7be436b5718a2d49baa996a4" +
		"616684a208c2d611cd65e605dca6e3d3f116859b4410fe13679696bb2e23c08a40c7e1316" +
		"d54b4c9c0286701c221151b3642cb4112ca1a53e0e597a7e29c634caed86ca3c31973d37b" +
		"4c346134fd6784cd99913feedf3d29d89a0a02a5a750f02f5738109dcc670bb27701fb59f" +
		"78e83b76860c3fec079a1fc8c937ddb58ae7500422b7e49ce63759c65b6bc439381d56bcc" +
		"159edede894b073841036ebfa050a5b3e7c876a3f18def26b1768a263ac66c9d83b680eb5" +
		"e"
	got := DeriveSKEYSEED(mustPRF(t, PRF_HMAC_SHA2_256), unhex(t, ni), unhex(t, nr), unhex(t, gxy))
	if !bytes.Equal(got, unhex(t, want)) {
		t.Errorf("got %x, want %s", got, want)
	}
}

func beUint64(tb testing.TB, s string) uint64 {
	tb.Helper()
	b := unhex(tb, s)
	if len(b) != 8 {
		tb.Fatalf("SPI %s is not 8 bytes", s)
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// TestPRFPlusAgainstPython compares prf+ with ike_check.py's, written with
// Python's hmac module, over lengths that end inside, at and past block
// boundaries, up to the 255-block limit, with empty and long keys and seeds.
func TestPRFPlusAgainstPython(t *testing.T) {
	type pyCase struct {
		Hash string `json:"hash"`
		Key  string `json:"key"`
		Seed string `json:"seed"`
		N    int    `json:"n"`
	}
	names := map[PRFID]string{PRF_HMAC_SHA2_256: "sha256", PRF_HMAC_SHA2_384: "sha384", PRF_HMAC_SHA2_512: "sha512"}
	var cases []pyCase
	var want [][]byte
	for _, id := range allPRFs {
		p := mustPRF(t, id)
		for i, n := range []int{0, 1, p.Size() - 1, p.Size(), p.Size() + 1, 3*p.Size() + 5, 168, 255 * p.Size()} {
			key := bytes.Repeat([]byte{byte(i + 1)}, []int{0, 1, 16, 32, 64, 129, 300, 48}[i])
			seed := bytes.Repeat([]byte{byte(0x80 + i)}, []int{0, 7, 16, 64, 300, 1, 48, 33}[i])
			got, err := p.Plus(key, n, seed[:len(seed)/2], seed[len(seed)/2:])
			if err != nil {
				t.Fatalf("%v Plus(%d): %v", id, n, err)
			}
			cases = append(cases, pyCase{names[id], hex.EncodeToString(key), hex.EncodeToString(seed), n})
			want = append(want, got)
		}
	}
	var res []string
	pyIKECheck(t, "prfplus", "hmac", cases, &res)
	if len(res) != len(cases) {
		t.Fatalf("%d answers for %d cases", len(res), len(cases))
	}
	for i, r := range res {
		if r != hex.EncodeToString(want[i]) {
			c := cases[i]
			t.Errorf("%s n=%d key %d bytes seed %d bytes: ours %x\npython %s", c.Hash, c.N, len(c.Key)/2, len(c.Seed)/2, want[i], r)
		}
	}
}

// TestPRFPlusLimit: 255 blocks is the most prf+ defines.
func TestPRFPlusLimit(t *testing.T) {
	for _, id := range allPRFs {
		p := mustPRF(t, id)
		if out, err := p.Plus([]byte("k"), 255*p.Size(), []byte("s")); err != nil || len(out) != 255*p.Size() {
			t.Errorf("%v: 255 blocks: %d bytes, %v", id, len(out), err)
		}
		for _, n := range []int{255*p.Size() + 1, 1 << 20, -1} {
			if _, err := p.Plus([]byte("k"), n, []byte("s")); !errors.Is(err, ErrPRFPlusLength) {
				t.Errorf("%v: %d bytes: %v, want ErrPRFPlusLength", id, n, err)
			}
		}
		if out, err := p.Plus(nil, 0); err != nil || len(out) != 0 {
			t.Errorf("%v: 0 bytes: %x, %v", id, out, err)
		}
	}
}

// TestPRFPlusPrefix: a shorter prf+ output is a prefix of a longer one, and
// what is cut off is not left behind in the returned slice's capacity.
func TestPRFPlusPrefix(t *testing.T) {
	p := mustPRF(t, PRF_HMAC_SHA2_256)
	long, _ := p.Plus([]byte("key"), 100, []byte("seed"))
	short, _ := p.Plus([]byte("key"), 37, []byte("seed"))
	if !bytes.HasPrefix(long, short) {
		t.Fatalf("37 bytes %x are not a prefix of 100 bytes %x", short, long)
	}
	if tail := short[len(short):cap(short)]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Errorf("prf+ left %x in the capacity past its output", tail)
	}
}

func TestNewPRF(t *testing.T) {
	for id, size := range map[PRFID]int{PRF_HMAC_SHA2_256: 32, PRF_HMAC_SHA2_384: 48, PRF_HMAC_SHA2_512: 64} {
		p := mustPRF(t, id)
		if p.Size() != size || p.ID() != id || p.String() != id.String() {
			t.Errorf("%v: size %d id %v string %q", id, p.Size(), p.ID(), p)
		}
		if want := max(16, size/2); p.MinNonceLen() != want {
			t.Errorf("%v: MinNonceLen %d, want %d", id, p.MinNonceLen(), want)
		}
	}
	for _, id := range []PRFID{0, 1, 2, 4, 8} { // MD5, SHA1, AES128_XCBC: not offered
		if _, err := NewPRF(id); !errors.Is(err, ErrUnknownTransform) {
			t.Errorf("NewPRF(%v) = %v, want ErrUnknownTransform", id, err)
		}
	}
	if got := fmt.Sprint(PRFID(99), KEID(99)); got != "PRF(99) KE(99)" {
		t.Errorf("unknown IDs print as %q", got)
	}
}

func BenchmarkPRFPlus(b *testing.B) {
	// 168 bytes: the IKE SA keys of AES-GCM-256 with PRF_HMAC_SHA2_256
	// (3 x 32 + 2 x 36), or of AES-CBC-128 with SHA-256 integrity (more).
	ni, nr, spis := make([]byte, 32), make([]byte, 32), make([]byte, 16)
	for _, id := range allPRFs {
		p := mustPRF(b, id)
		skeyseed := make([]byte, p.Size())
		b.Run(id.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(168)
			for b.Loop() {
				if _, err := p.Plus(skeyseed, 168, ni, nr, spis); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
