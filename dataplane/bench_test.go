package dataplane

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"strconv"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/espx/espx/crypto"
)

// Benchmarks of the per-packet hot paths, run the way a worker runs them: a
// batch of benchBatch frames per operation, each frame in its own buffer.
// Each Encap/Decap benchmark has a Raw twin that does only the cipher's work
// on the same payloads in the same kind of buffers in the same run, so the
// ratio of the two is the cost of ESP processing itself. Both report ns/pkt.
// `make bench` runs them; bench/RESULTS.md records the figures.

const benchBatch = 32

func reportPerPacket(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/pkt")
}

var benchSizes = []int{64, 512, 1400}

// rawSizes adds, for the raw baselines, 80 bytes: what a 64-byte packet
// becomes as ESP plaintext (payload, trailer, padding to the block), so
// that the cipher's share of the 64-byte figures can be told from ours.
func rawSizes(name string) []int {
	if name == "aes128gcm16" {
		return []int{64, 80, 512, 1400}
	}
	return benchSizes
}

// benchTransforms are the transforms benchmarked, with a raw baseline.
var benchTransforms = []struct {
	name string
	c    crypto.Config
}{
	{"aes128gcm16", transforms[0].c},
	{"aes256gcm16", transforms[1].c},
	{"chacha20poly1305", transforms[2].c},
	{"aes128gmac", transforms[3].c},
	{"aes128-sha256", transforms[4].c},
	{"aes256-sha512", transforms[5].c},
}

// innerOfSize is an IPv4 UDP packet of exactly n bytes.
func innerOfSize(n int) []byte { return udpPacket(host4a, host4b, n-ipv4MinLen-udpLen, 0) }

func BenchmarkEncap(b *testing.B) {
	for _, tr := range benchTransforms {
		for _, n := range benchSizes {
			b.Run(tr.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				benchEncap(b, SAConfig{SPI: 0x1000, Transform: tr.c, Src: gw4a, Dst: gw4b, ESN: true}, n)
			})
		}
	}
	b.Run("aes128gcm16-udp6/1400", func(b *testing.B) {
		benchEncap(b, SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw6a, Dst: gw6b, Encap: true, ESN: true}, 1400)
	})
}

func benchEncap(b *testing.B, c SAConfig, n int) {
	out, err := NewOutboundSA(c)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(nil)
	inner := innerOfSize(n)
	frames := make([]Frame, benchBatch)
	sas := make([]*OutboundSA, benchBatch)
	drops := make([]Drop, benchBatch)
	for i := range frames {
		frames[i] = frameOf(inner)
		sas[i] = out
	}
	b.SetBytes(int64(n * benchBatch))
	b.ReportAllocs()
	for b.Loop() {
		for i := range frames {
			// Encap encrypted the inner header in place: put it back.
			// The payload stays ciphertext, which costs the same to
			// encrypt again.
			f := &frames[i]
			copy(f.Buf[testHeadroom:], inner[:ipv4MinLen])
			f.Off, f.Len = testHeadroom, n
		}
		if e.EncapBatch(sas, frames, drops) != benchBatch {
			b.Fatal(drops)
		}
	}
	reportPerPacket(b)
}

// benchRing is how many distinct packets the Decap benchmarks cycle
// through; after each round the replay window is emptied.
const benchRing = 4 * benchBatch

func BenchmarkDecap(b *testing.B) {
	for _, tr := range benchTransforms {
		for _, n := range benchSizes {
			b.Run(tr.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				benchDecap(b, SAConfig{SPI: 0x1000, Transform: tr.c, Src: gw4a, Dst: gw4b, ESN: true, ReplayWindow: DefaultReplayWindow}, n)
			})
		}
	}
	b.Run("aes128gcm16-udp6/1400", func(b *testing.B) {
		benchDecap(b, SAConfig{SPI: 0x1000, Transform: transforms[0].c, Src: gw6a, Dst: gw6b, Encap: true, ESN: true, ReplayWindow: DefaultReplayWindow}, 1400)
	})
}

func benchDecap(b *testing.B, c SAConfig, n int) {
	out, in := saPair(b, c)
	pristine := make([][]byte, benchRing)
	for i := range pristine {
		pristine[i] = sealed(b, out, innerOfSize(n))
	}
	frames := make([]Frame, benchBatch)
	ins := make([]Inbound, benchBatch)
	sas := make([]*InboundSA, benchBatch)
	drops := make([]Drop, benchBatch)
	for i := range frames {
		frames[i] = frameOf(pristine[0])
		sas[i] = in
	}
	e := NewEngine(nil)
	b.SetBytes(int64(n * benchBatch))
	b.ReportAllocs()
	ring := 0
	for b.Loop() {
		for i := range frames {
			// Decryption is in place: restore the packet. The Raw
			// baseline makes the same copy.
			p := pristine[ring+i]
			f := &frames[i]
			copy(f.Buf[testHeadroom:], p)
			f.Off, f.Len = testHeadroom, len(p)
			if ParseInbound(f, &ins[i]) != DropNone {
				b.Fatal("parse")
			}
		}
		if e.DecapBatch(sas, ins, frames, drops) != benchBatch {
			b.Fatal(drops)
		}
		if ring += benchBatch; ring == benchRing {
			ring = 0
			in.window.reset()
		}
	}
	reportPerPacket(b)
}

// rawCipher is a transform's bare cryptography, without ESP: an AEAD, or
// CBC and an HMAC.
type rawCipher struct {
	aead   cipher.AEAD
	cbcEnc cipher.BlockMode
	cbcDec cipher.BlockMode
	mac    hash.Hash
}

func newRaw(b *testing.B, c crypto.Config) rawCipher {
	switch c.Encr {
	case crypto.ENCR_CHACHA20_POLY1305:
		a, err := chacha20poly1305.New(c.EncrKey[:32])
		if err != nil {
			b.Fatal(err)
		}
		return rawCipher{aead: a}
	case crypto.ENCR_AES_GCM_16, crypto.ENCR_NULL_AUTH_AES_GMAC:
		blk, _ := aes.NewCipher(c.EncrKey[:len(c.EncrKey)-4])
		a, _ := cipher.NewGCM(blk)
		return rawCipher{aead: a}
	}
	blk, _ := aes.NewCipher(c.EncrKey)
	h := sha256.New
	if c.Integ == crypto.AUTH_HMAC_SHA2_512_256 {
		h = sha512.New
	}
	iv := make([]byte, 16)
	return rawCipher{cbcEnc: cipher.NewCBCEncrypter(blk, iv), cbcDec: cipher.NewCBCDecrypter(blk, iv), mac: hmac.New(h, c.IntegKey)}
}

// BenchmarkRawSeal is the baseline of BenchmarkEncap: the cipher alone
// sealing the same n bytes in place in each of a batch of buffers with an
// 8-byte AAD (AES-GMAC: the n bytes are all AAD; CBC: encrypt then HMAC,
// rounded down to the block).
func BenchmarkRawSeal(b *testing.B) {
	for _, tr := range benchTransforms {
		for _, n := range rawSizes(tr.name) {
			b.Run(tr.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				r := newRaw(b, tr.c)
				bufs := make([][]byte, benchBatch)
				for i := range bufs {
					bufs[i] = make([]byte, testHeadroom+n+testTailroom)[testHeadroom:]
				}
				nonce, aad := make([]byte, 12), make([]byte, 8)
				var sum [64]byte
				b.SetBytes(int64(n * benchBatch))
				b.ReportAllocs()
				for b.Loop() {
					for _, buf := range bufs {
						r.seal(buf, n, nonce, aad, sum[:0], tr.c.Encr == crypto.ENCR_NULL_AUTH_AES_GMAC)
					}
				}
				reportPerPacket(b)
			})
		}
	}
}

func (r *rawCipher) seal(buf []byte, n int, nonce, aad, sum []byte, gmac bool) {
	switch {
	case gmac:
		r.aead.Seal(sum, nonce, nil, buf[:n])
	case r.aead != nil:
		r.aead.Seal(buf[:0], nonce, buf[:n], aad)
	default:
		m := n &^ 15
		r.cbcEnc.CryptBlocks(buf[:m], buf[:m])
		r.mac.Reset()
		r.mac.Write(buf[:m])
		r.mac.Sum(sum)
	}
}

// BenchmarkRawOpen is the baseline of BenchmarkDecap: the same copy of the
// sealed bytes that the Decap benchmark makes, then the cipher alone
// opening them in place.
func BenchmarkRawOpen(b *testing.B) {
	for _, tr := range benchTransforms {
		for _, n := range rawSizes(tr.name) {
			b.Run(tr.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				r := newRaw(b, tr.c)
				gmac := tr.c.Encr == crypto.ENCR_NULL_AUTH_AES_GMAC
				nonce, aad := make([]byte, 12), make([]byte, 8)
				pristine := make([]byte, n+16)
				r.seal(pristine, n, nonce, aad, pristine[n:n], gmac)
				bufs := make([][]byte, benchBatch)
				for i := range bufs {
					bufs[i] = make([]byte, testHeadroom+len(pristine)+testTailroom)[testHeadroom:]
				}
				var sum [64]byte
				b.SetBytes(int64(n * benchBatch))
				b.ReportAllocs()
				for b.Loop() {
					for _, buf := range bufs {
						copy(buf, pristine)
						var err error
						switch {
						case gmac:
							_, err = r.aead.Open(sum[:0], nonce, buf[n:n+16], buf[:n])
						case r.aead != nil:
							_, err = r.aead.Open(buf[:0], nonce, buf[:n+16], aad)
						default:
							m := n &^ 15
							r.mac.Reset()
							r.mac.Write(buf[:m])
							r.mac.Sum(sum[:0])
							r.cbcDec.CryptBlocks(buf[:m], buf[:m])
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				reportPerPacket(b)
			})
		}
	}
}
