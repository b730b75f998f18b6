package control

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

// FuzzAuthenticated sends a responder CREATE_CHILD_SA and INFORMATIONAL
// requests whose encrypted payloads are fuzzed, sealed with the IKE SA's
// real keys: what a peer that has authenticated can send, past the ICV
// check that stops FuzzReceive's inputs. The seeds are the requests the
// daemon knows (new child SA, child rekey, IKE rekey, deletes, liveness);
// whatever comes, the daemon must not panic, and an IKE SA it keeps must
// still answer a liveness check.
func FuzzAuthenticated(f *testing.F) {
	p := twoPeers(f, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	var a *IKESA
	up := func(tb testing.TB) {
		var err error
		if a, err = p.a.Initiate("to-b"); err != nil {
			tb.Fatal(err)
		}
		if err := a.Wait(); err != nil {
			tb.Fatal(err)
		}
		p.net.settle()
	}
	up(f)
	esp := mustParse(f, ProtoESP, "aes128gcm16")
	esp[0].SPI = []byte{0xc0, 0, 0, 1}
	ike := mustParse(f, ProtoIKE, "aes128gcm16-prfsha256-x25519")
	ike[0].SPI = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	nonce := &Nonce{Data: make([]byte, 32)}
	tsi := &TS{Selectors: p.cfgA.LocalTS}
	tsr := &TS{Responder: true, Selectors: p.cfgA.RemoteTS}
	var childOut uint32
	for spi, c := range p.instB.sas {
		if !c.Inbound {
			childOut = spi
		}
	}
	spi4 := binary.BigEndian.AppendUint32(nil, childOut)
	for _, s := range []struct {
		info  bool
		inner []Payload
	}{
		{false, []Payload{&SA{Proposals: esp}, nonce, tsi, tsr}},
		{false, []Payload{&Notify{Protocol: ProtoESP, SPI: spi4, NotifyType: REKEY_SA}, &SA{Proposals: esp}, nonce, tsi, tsr}},
		{false, []Payload{&SA{Proposals: ike}, nonce, &KE{Group: 31, Data: x.PublicKey().Bytes()}}},
		{true, nil},
		{true, []Payload{&Delete{Protocol: ProtoESP, SPIs: []uint32{childOut}}}},
		{true, []Payload{&Delete{Protocol: ProtoIKE}}},
	} {
		first := PayloadNone
		if len(s.inner) > 0 {
			first = s.inner[0].Type()
		}
		f.Add(s.info, uint8(first), AppendPayloads(nil, s.inner, -1))
	}
	f.Fuzz(func(t *testing.T, info bool, first uint8, plain []byte) {
		b := p.b.lookup(a.spiR)
		if b == nil || b.State() != "ESTABLISHED" || b.Children() > 16 {
			// Deleted, rekeyed away, or grown: start again.
			a.Delete()
			p.net.settle()
			up(t)
			b = p.b.lookup(a.spiR)
		}
		b.mu.Lock()
		id := b.peerID
		b.mu.Unlock()
		ex := CREATE_CHILD_SA
		if info {
			ex = INFORMATIONAL
		}
		msg, err := (&Message{Header: a.header(ex, false, id)}).encodeSK(PayloadType(first), plain, a.out)
		if err != nil {
			return // too long to send
		}
		p.b.Receive(msg, gwA, gwB)
		p.net.settle()
		// A kept IKE SA still works: an empty INFORMATIONAL is answered.
		if b := p.b.lookup(a.spiR); b != nil && b.State() == "ESTABLISHED" {
			b.mu.Lock()
			id := b.peerID
			b.mu.Unlock()
			before := b.d.Stats.OutOfOrder.Load()
			msg, err := (&Message{Header: a.header(INFORMATIONAL, false, id)}).EncodeEncrypted(nil, a.out)
			if err != nil {
				t.Fatal(err)
			}
			p.b.Receive(msg, gwA, gwB)
			p.net.settle()
			b.mu.Lock()
			answered := b.peerID == id+1
			b.mu.Unlock()
			if !answered && b.State() == "ESTABLISHED" && b.d.Stats.OutOfOrder.Load() == before {
				t.Fatalf("the IKE SA kept after the request no longer answers a liveness check (message %d)", id)
			}
		}
	})
}
