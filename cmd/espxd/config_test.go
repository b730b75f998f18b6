package main

import (
	"strings"
	"testing"

	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/spd"
)

const goodConfig = `
[dataplane]
protected = "eth1"
unprotected = "eth0"
sp-hash-ipv4 = [16, 24]

[[policy]]
dir = "out"
local = "10.22.0.0/20"
remote = "10.24.1.0/24"
proto = "tcp"
remote-ports = "1000-2000"
action = "protect"
reqid = 7
trap = true

[[sa]]
dir = "out"
spi = "0x1001"
reqid = 7
src = "192.0.2.1"
dst = "192.0.2.2"
encryption = "aes-cbc"
key = "0x000102030405060708090a0b0c0d0e0f"
integrity = "hmac-sha2-256-128"
integrity-key = "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"
esn = true
encap = true
hard-time = "1h"
`

func TestParseConfig(t *testing.T) {
	c, err := parseConfig(goodConfig)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.sas) != 1 || len(c.policies) != 1 {
		t.Fatalf("%d SAs, %d policies", len(c.sas), len(c.policies))
	}
	sa := c.sas[0]
	if sa.SPI != 0x1001 || sa.ReqID != 7 || sa.Inbound || !sa.ESN || !sa.Encap || sa.ReplayWindow != 4096 ||
		sa.Mode != dataplane.ModeTunnel || sa.Lifetime.HardAdd.Hours() != 1 || len(sa.Transform.IntegKey) != 32 {
		t.Fatalf("SA %+v", sa)
	}
	p := c.policies[0]
	if p.Dir != spd.DirOut || p.Action != spd.Protect || !p.Trap || p.SA != 7 || p.Proto != 6 || p.RemotePorts != spd.Ports(1000, 2000) {
		t.Fatalf("policy %v", p)
	}
	if c.dp.Thresholds != (spd.Thresholds{V4Local: 16, V4Remote: 24, V6Local: 128, V6Remote: 128}) || c.dp.DefaultBypass {
		t.Fatalf("dataplane config %+v", c.dp)
	}
}

// Every error names its field and reason, all errors are reported at
// once, and keys are never echoed.
func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, edit, want string
	}{
		{"unknown key", `protected = "eth1"|protected = "eth1"` + "\n" + `colour = "red"`, "unknown key(s): dataplane.colour"},
		{"bad spi", `spi = "0x1001"|spi = "banana"`, `sa[0]: spi: "banana"`},
		{"reserved spi", `spi = "0x1001"|spi = "17"`, "SPI 0x11 is reserved"},
		{"bad key", `key = "0x000102030405060708090a0b0c0d0e0f"|key = "0xsecretsecret"`, "sa[0]: key: not a hex string"},
		{"short key", `key = "0x000102030405060708090a0b0c0d0e0f"|key = "0x0001"`, "sa[0]: encryption:"},
		{"family mix", `dst = "192.0.2.2"|dst = "2001:db8::2"`, "not of one family"},
		{"bad encryption", `encryption = "aes-cbc"|encryption = "des"`, `sa[0]: encryption: "des"`},
		{"protect without reqid", "action = \"protect\"\nreqid = 7|action = \"protect\"", "policy[0]: reqid:"},
		{"ports without proto", `proto = "tcp"|proto = ""`, "policy[0]:"},
		{"bad prefix", `local = "10.22.0.0/20"|local = "10.22.0.0/40"`, "policy[0]: local:"},
		{"thresholds", `sp-hash-ipv4 = [16, 24]|sp-hash-ipv4 = [16, 33]`, "dataplane.sp-hash-ipv4"},
		{"same interface", `protected = "eth1"|protected = "eth0"`, "dataplane.unprotected: the same interface"},
		{"bad default", `protected = "eth1"|protected = "eth1"` + "\n" + `default-policy = "maybe"`, "dataplane.default-policy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := goodConfig
			if from, to, ok := strings.Cut(c.edit, "|"); ok {
				if !strings.Contains(text, from) {
					t.Fatalf("edit %q does not apply", from)
				}
				text = strings.Replace(text, from, to, 1)
			} else {
				text += c.edit
			}
			_, err := parseConfig(text)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "0a0b0c0d0e0f") {
				t.Fatalf("error shows key material: %v", err)
			}
		})
	}
	// Several errors at once, all reported.
	bad := strings.Replace(strings.Replace(goodConfig, `dir = "out"`, `dir = "sideways"`, 2), `unprotected = "eth0"`, `unprotected = ""`, 1)
	_, err := parseConfig(bad)
	if err == nil || !strings.Contains(err.Error(), "policy[0]: dir") || !strings.Contains(err.Error(), "sa[0]: dir") || !strings.Contains(err.Error(), "dataplane.unprotected") {
		t.Fatalf("want three errors, got %v", err)
	}
}

const goodConnection = `
[[connection]]
name = "b"
local = "192.0.2.1"
remote = "192.0.2.2"
psk = "sixteen bytes at least"
local-ts = ["10.1.0.0/16"]
remote-ts = ["10.2.0.0/16"]
`

func TestParseConnectionErrors(t *testing.T) {
	base := "[dataplane]\nprotected = \"eth1\"\nunprotected = \"eth0\"\n" + goodConnection
	c, err := parseConfig(base)
	if err != nil || len(c.conns) != 1 || c.conns[0].start != "trap" || c.conns[0].inactivity.Minutes() != 15 || c.conns[0].rekey.Hours() != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`psk = "sixteen bytes at least"`, `psk = "short"`, "connection[0]: psk: missing or shorter than 16 bytes"},
		{`remote = "192.0.2.2"`, `remote = "nowhere"`, "connection[0]: remote:"},
		{`name = "b"`, "name = \"b\"\nike = \"aes128gcm16-prfmd5\"", "connection[0]: ike:"},
		{`name = "b"`, "name = \"b\"\nclose-action = \"explode\"", "connection[0]: close-action:"},
		{`name = "b"`, "name = \"b\"\ndpd-action = \"panic\"", "connection[0]: dpd-action:"},
		{`name = "b"`, "name = \"b\"\nrekey-time = \"1h\"\nlife-time = \"30m\"", "connection[0]: life-time:"},
		{`local-ts = ["10.1.0.0/16"]`, `local-ts = []`, "connection[0]: local-ts: missing"},
	} {
		_, err := parseConfig(strings.Replace(base, tc.from, tc.to, 1))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.to, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "sixteen") {
			t.Errorf("error shows the PSK: %v", err)
		}
	}
	if _, err := parseConfig(base + strings.Replace(goodConnection, `remote = "192.0.2.2"`, `remote = "192.0.2.3"`, 1)); err == nil || !strings.Contains(err.Error(), `"b" used twice`) {
		t.Errorf("duplicate name: %v", err)
	}
}
