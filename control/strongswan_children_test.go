package control

import (
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/espx/espx/internal/sswantest"
)

// TestStrongSwanTwoChildren: strongSwan negotiates the two children of one
// connection in one IKE SA, each with its own selectors and proposals;
// espx, responding with two connections to that peer, gives each child SA
// the connection it fits, and both agree on every SPI.
func TestStrongSwanTwoChildren(t *testing.T) {
	sswantest.Require(t)
	psk := []byte("a pre-shared key for two children")
	conf := `connections {
  espx {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = aes128gcm16-prfsha256-x25519
    local {
      auth = psk
      id = gw-b.example.net
    }
    remote {
      auth = psk
      id = gw-a.example.net
    }
    children {
      web {
        local_ts = 203.0.113.0/25
        remote_ts = 198.51.100.0/24
        esp_proposals = aes128gcm16
        start_action = none
      }
      db {
        local_ts = 203.0.113.128/25
        remote_ts = 198.51.100.0/24
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
}
` + swanSecrets(psk)
	ch, tr := interopPair(t, "espx-kids", conf, "203.0.113.1/32", "203.0.113.129/32")
	conn := func(name, esp, remote string) *PeerConfig {
		return &PeerConfig{
			Name: name, Local: gwA, Remote: gwB,
			LocalID: &ID{IDType: IDFQDN, Data: []byte("gw-a.example.net")}, RemoteID: &ID{IDType: IDFQDN, Data: []byte("gw-b.example.net")},
			PSK: psk, IKE: mustParse(t, ProtoIKE, "aes128gcm16-prfsha256-x25519"), ESP: mustParse(t, ProtoESP, esp),
			LocalTS:  []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("198.51.100.0/24"))},
			RemoteTS: []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix(remote))},
		}
	}
	inst := newFakeInstaller(0xe6000000)
	logs := &syncBuffer{}
	d, err := NewDaemon(tr, inst, []*PeerConfig{
		conn("to-web", "aes128gcm16", "203.0.113.0/25"),
		conn("to-db", "aes256gcm16", "203.0.113.128/25"),
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tr.Serve(d)
	defer func() {
		if t.Failed() {
			t.Logf("espx log:\n%s", logs.String())
		}
	}()

	// strongSwan brings up web, then db in the same IKE SA.
	ch.Swanctl(t, "--initiate", "--child", "web", "--timeout", "20")
	ch.Swanctl(t, "--initiate", "--child", "db", "--timeout", "20")
	var list string
	spis := map[string][2]uint32{}
	for i := 0; ; i++ {
		list = ch.Swanctl(t, "--list-sas")
		for _, name := range []string{"web", "db"} {
			re := regexp.MustCompile(`(?m)^\s+` + name + `: #\d+, reqid \d+, INSTALLED[^\n]*\n(?:[^\n]*\n)*?\s+in\s+([0-9a-f]{8})[^\n]*\n\s+out\s+([0-9a-f]{8})`)
			if m := re.FindStringSubmatch(list); m != nil {
				var in, out uint32
				fmt.Sscanf(m[1], "%x", &in)
				fmt.Sscanf(m[2], "%x", &out)
				spis[name] = [2]uint32{in, out}
			}
		}
		if len(spis) == 2 {
			break
		}
		if i == 50 {
			t.Fatalf("strongSwan has not both child SAs installed:\n%s", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(regexp.MustCompile(`ESTABLISHED`).FindAllString(list, -1)); n != 1 {
		t.Errorf("strongSwan has %d IKE SAs, want both children in one:\n%s", n, list)
	}
	ikes := d.List()
	if len(ikes) != 1 {
		t.Fatalf("espx has %d IKE SAs: %+v", len(ikes), ikes)
	}
	got := map[string]ChildInfo{}
	for _, c := range ikes[0].Children {
		got[c.Name] = c
	}
	for swan, want := range map[string]struct{ conn, esp, remote string }{
		"web": {"to-web", "aes128gcm16-noesn", "203.0.113.0/25"},
		"db":  {"to-db", "aes256gcm16-noesn", "203.0.113.128/25"},
	} {
		c, ok := got[want.conn]
		if !ok {
			t.Errorf("espx has no child SA of %s: %+v", want.conn, ikes[0].Children)
			continue
		}
		// strongSwan's in is our out.
		if c.OutSPI != spis[swan][0] || c.InSPI != spis[swan][1] {
			t.Errorf("%s: espx %08x/%08x (in/out), strongSwan's %s %08x/%08x", want.conn, c.InSPI, c.OutSPI, swan, spis[swan][0], spis[swan][1])
		}
		if c.Proposal != want.esp || len(c.RemoteTS) != 1 || c.RemoteTS[0] != want.remote {
			t.Errorf("%s: %s, %v === %v", want.conn, c.Proposal, c.LocalTS, c.RemoteTS)
		}
		inst.mu.Lock()
		if s := inst.sas[c.InSPI]; s == nil || s.Conn != want.conn {
			t.Errorf("%s: inbound SA installed as %+v", want.conn, s)
		}
		inst.mu.Unlock()
	}
	if d.Stats.TSUnacceptable.Load() != 0 || d.Stats.NoProposal.Load() != 0 {
		t.Errorf("espx refused %d child SAs for selectors, %d for proposals", d.Stats.TSUnacceptable.Load(), d.Stats.NoProposal.Load())
	}
	ch.Swanctl(t, "--terminate", "--ike", "espx", "--timeout", "10")
	for i := 0; inst.count() != 0 || d.sas.len() != 0; i++ {
		if i == 50 {
			t.Fatalf("after strongSwan's delete espx still has %d child SAs and %d IKE SAs", inst.count(), d.sas.len())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
