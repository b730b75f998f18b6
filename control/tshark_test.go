package control

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePcap writes IKE messages as UDP datagrams to port 500 over IPv4 in a
// pcap file with the raw-IP link type.
func writePcap(tb testing.TB, msgs [][]byte) string {
	tb.Helper()
	var f []byte
	f = binary.LittleEndian.AppendUint32(f, 0xa1b2c3d4)
	f = binary.LittleEndian.AppendUint16(f, 2)
	f = binary.LittleEndian.AppendUint16(f, 4)
	f = binary.LittleEndian.AppendUint32(f, 0)
	f = binary.LittleEndian.AppendUint32(f, 0)
	f = binary.LittleEndian.AppendUint32(f, 65535)
	f = binary.LittleEndian.AppendUint32(f, 101) // LINKTYPE_RAW
	for i, m := range msgs {
		p := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2}
		binary.BigEndian.PutUint16(p[2:], uint16(20+8+len(m)))
		var sum uint32
		for j := 0; j < 20; j += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[j:]))
		}
		for sum>>16 != 0 {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(p[10:], ^uint16(sum))
		p = binary.BigEndian.AppendUint16(p, 500)
		p = binary.BigEndian.AppendUint16(p, 500)
		p = binary.BigEndian.AppendUint16(p, uint16(8+len(m)))
		p = append(p, 0, 0)
		p = append(p, m...)
		f = binary.LittleEndian.AppendUint32(f, uint32(i+1))
		f = binary.LittleEndian.AppendUint32(f, 0)
		f = binary.LittleEndian.AppendUint32(f, uint32(len(p)))
		f = binary.LittleEndian.AppendUint32(f, uint32(len(p)))
		f = append(f, p...)
	}
	path := filepath.Join(tb.TempDir(), "ike.pcap")
	if err := os.WriteFile(path, f, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestTsharkDissects has Wireshark's IKEv2 dissector, which we did not
// write, read what we encode, and compares the fields it finds.
func TestTsharkDissects(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: run make deps (apt-get install tshark)")
	}
	clear := sampleInit()
	// The IKE_AUTH payloads in the clear, so that the dissector can see
	// them: it cannot decrypt SK.
	inner := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: INFORMATIONAL, MessageID: 7, Flags: FlagResponse}, Payloads: sampleAuthInner()}
	enc, err := (&Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH, MessageID: 1, Flags: FlagInitiator}}).EncodeEncrypted(sampleAuthInner(), nullSealer{})
	if err != nil {
		t.Fatal(err)
	}
	pcap := writePcap(t, [][]byte{clear.Encode(), inner.Encode(), enc})

	fields := []string{
		"isakmp.ispi", "isakmp.rspi", "isakmp.exchangetype", "isakmp.messageid", "isakmp.length",
		"isakmp.typepayload", "isakmp.prop.number", "isakmp.tf.id.encr", "isakmp.tf.id.dh",
		"isakmp.ike2.attr.key_length", "isakmp.key_exchange.dh_group", "isakmp.notify.msgtype",
		"isakmp.ts.start_ipv4", "isakmp.ts.end_ipv6", "isakmp.ts.start_port", "isakmp.id.type",
		"isakmp.auth.method", "isakmp.delete.spi", "_ws.malformed", "_ws.expert.severity",
	}
	args := []string{"-r", pcap, "-d", "udp.port==500,isakmp", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("tshark printed %d lines:\n%s", len(lines), out)
	}
	rows := make([]map[string]string, len(lines))
	for i, l := range lines {
		vals := strings.Split(l, "|")
		rows[i] = map[string]string{}
		for j, f := range fields {
			if j < len(vals) {
				rows[i][f] = vals[j]
			}
		}
	}
	want := []map[string]string{
		{
			"isakmp.ispi": "0102030405060708", "isakmp.rspi": "0000000000000000", "isakmp.exchangetype": "34",
			// Proposal (2) and transform (3) substructures count as payloads to tshark.
			"isakmp.typepayload": "33,2,3,3,3,2,3,3,3,3,3,34,40,41,41,43", "isakmp.prop.number": "1,2",
			"isakmp.tf.id.encr": "20,12", "isakmp.tf.id.dh": "31,19,14", "isakmp.ike2.attr.key_length": "128,256",
			"isakmp.key_exchange.dh_group": "31", "isakmp.notify.msgtype": "16388,16389",
		},
		{
			"isakmp.exchangetype": "37", "isakmp.messageid": "0x00000007",
			"isakmp.typepayload": "35,39,33,2,3,3,3,44,45,41,42,42", "isakmp.id.type": "2", "isakmp.auth.method": "2",
			"isakmp.ts.start_ipv4": "198.51.100.0,203.0.113.0", "isakmp.ts.end_ipv6": "2001:db8::ffff",
			"isakmp.ts.start_port": "0,53,0", "isakmp.notify.msgtype": "16384",
			"isakmp.delete.spi": "c0000001,c0000002",
		},
		{"isakmp.exchangetype": "35", "isakmp.typepayload": "46", "isakmp.messageid": "0x00000001"},
	}
	for i, w := range want {
		for f, v := range w {
			if got := rows[i][f]; got != v {
				t.Errorf("message %d: tshark says %s = %q, want %q", i, f, got, v)
			}
		}
		if rows[i]["_ws.malformed"] != "" || strings.Contains(rows[i]["_ws.expert.severity"], "8388608") {
			t.Errorf("message %d: tshark finds it malformed or in error: %q %q", i, rows[i]["_ws.malformed"], rows[i]["_ws.expert.severity"])
		}
	}
	if t.Failed() {
		t.Logf("tshark output:\n%s", out)
	}
}

// With LogKeys, a daemon logs each IKE SA's keys as a line of Wireshark's
// IKEv2 decryption table; with that line tshark decrypts the IKE_AUTH
// exchange of a capture (and without it, it cannot), for AES-GCM and for
// AES-CBC with HMAC.
func TestTsharkDecryptsWithLoggedKeys(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: run make deps (apt-get install tshark)")
	}
	for _, suite := range []string{"aes128gcm16-prfsha256-x25519", "aes256-sha384-ecp256"} {
		t.Run(suite, func(t *testing.T) {
			p := twoPeers(t, suite, suite, "aes128gcm16", "aes128gcm16", nil)
			var logs syncBuffer
			var err error
			if p.a, err = NewDaemon(p.net, p.instA, []*PeerConfig{p.cfgA}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))); err != nil {
				t.Fatal(err)
			}
			p.a.LogKeys(true)
			p.net.mu.Lock()
			p.net.daemons[gwA.Addr()] = p.a
			p.net.mu.Unlock()
			sa, err := p.a.Initiate("to-b")
			if err != nil {
				t.Fatal(err)
			}
			if err := waitSA(t, sa); err != nil {
				t.Fatal(err)
			}
			p.net.settle()
			var line string
			for _, l := range strings.Split(logs.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "IKE SA keys" {
					line, _ = rec["wireshark_ikev2"].(string)
				}
			}
			if line == "" {
				t.Fatalf("no key line logged:\n%s", logs.String())
			}
			var msgs [][]byte
			p.net.mu.Lock()
			for _, d := range p.net.sent {
				msgs = append(msgs, d.b)
			}
			p.net.mu.Unlock()
			pcap := writePcap(t, msgs)
			payloads := func(opts ...string) string {
				args := append([]string{"-r", pcap, "-d", "udp.port==500,isakmp"}, opts...)
				args = append(args, "-Y", "isakmp.exchangetype == 35", "-T", "fields", "-E", "occurrence=a", "-e", "isakmp.typepayload")
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, tshark, args...).Output()
				if err != nil {
					t.Fatalf("tshark %v: %v", opts, err)
				}
				return string(out)
			}
			// IDi (35), AUTH (39), SA (33), TSi (44), TSr (45): inside SK (46).
			clear, decrypted := payloads(), payloads("-o", "uat:ikev2_decryption_table:"+line)
			for _, want := range []string{"35", "39", "44", "45"} {
				if !strings.Contains(decrypted, ","+want) {
					t.Errorf("tshark with the logged keys shows no payload %s in IKE_AUTH:\n%s", want, decrypted)
				}
			}
			if strings.Contains(clear, "39") {
				t.Errorf("tshark sees AUTH without keys:\n%s", clear)
			}
		})
	}
	// Off, no key is logged.
	p := twoPeers(t, "aes128gcm16-prfsha256-x25519", "aes128gcm16-prfsha256-x25519", "aes128gcm16", "aes128gcm16", nil)
	var logs syncBuffer
	p.b.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sa, _ := p.a.Initiate("to-b")
	if err := waitSA(t, sa); err != nil {
		t.Fatal(err)
	}
	p.net.settle()
	if strings.Contains(logs.String(), "sk_e") || !strings.Contains(logs.String(), "IKE SA established") {
		t.Errorf("keys logged without LogKeys, or nothing logged:\n%s", logs.String())
	}
}
