package crypto

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

// TestGMACAgainstPyca checks AES-GMAC ESP packets against pyca/cryptography,
// which we did not write: scapy, our other reference, has no AES-GMAC.
func TestGMACAgainstPyca(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import cryptography.hazmat.primitives.ciphers.aead").Run(); err != nil {
		t.Skip("python3-cryptography not installed: run make deps (apt-get install python3-cryptography)")
	}
	type pyCase struct {
		Key    string `json:"key"`
		ESN    bool   `json:"esn"`
		SeqHi  uint32 `json:"seq_hi"`
		Packet string `json:"packet"`
	}
	var cases []pyCase
	var packets [][]byte
	s := NewScratch()
	for _, keyLen := range []int{16, 24, 32} {
		key := make([]byte, keyLen+4)
		for i := range key {
			key[i] = byte(0x40 + i*5)
		}
		e, err := NewESP(Config{Encr: ENCR_NULL_AUTH_AES_GMAC, EncrKey: key})
		if err != nil {
			t.Fatal(err)
		}
		for _, esn := range []bool{false, true} {
			for _, size := range []int{0, 3, 60, 1400} {
				seq := uint64(0x1_0000_0000+size) + 7
				buf, off := espPacket(e, 4, 0xabcd0001, seq, bytes.Repeat([]byte{0x5a}, size), 4)
				if err := e.Seal(s, buf, off, seq, esn); err != nil {
					t.Fatal(err)
				}
				cases = append(cases, pyCase{hex.EncodeToString(key), esn, uint32(seq >> 32), hex.EncodeToString(buf[off:])})
				packets = append(packets, buf)
			}
		}
	}
	in, _ := json.Marshal(cases)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/gmac_check.py")
	cmd.Stdin = bytes.NewReader(in)
	outJSON, err := cmd.Output()
	if err != nil {
		t.Fatalf("gmac_check.py: %v", err)
	}
	var res []struct {
		Tag    string `json:"tag"`
		OursOK bool   `json:"ours_ok"`
	}
	if err := json.Unmarshal(outJSON, &res); err != nil || len(res) != len(cases) {
		t.Fatalf("bad output (%v): %s", err, outJSON)
	}
	for i, r := range res {
		if !r.OursOK {
			pkt := packets[i]
			t.Errorf("case %d (esn=%v): pyca tag %s, ours %x", i, cases[i].ESN, r.Tag, pkt[len(pkt)-16:])
		}
	}
}
