package control

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/espx/espx/internal/netnstest"
)

// Interoperability with a real strongSwan charon (5.9.8 from Debian, with
// kernel-libipsec, which forces NAT traversal) in a network namespace:
// espx as initiator and as responder, AES-GCM and AES-CBC with HMAC child
// SAs. Each side verifies the other's AUTH payload; the child SA's SPIs
// must agree with swanctl's, and its keys with the ones charon logs.

const charonPath = "/usr/lib/ipsec/charon"

func requireStrongSwan(t *testing.T) {
	netnstest.Require(t)
	for _, p := range []string{charonPath, "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("strongSwan not installed (%s): run make deps (apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins)", p)
		}
	}
	for _, c := range []string{"swanctl", "unshare"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not installed", c)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun for kernel-libipsec")
	}
}

// charon is one strongSwan daemon this test started.
type charon struct {
	state string
	vici  string
	cmd   *exec.Cmd
}

// startCharon runs charon in ns with a private /run (its pid file and vici
// socket paths are fixed) and loads one connection, named espx.
func startCharon(t *testing.T, ns *netnstest.NS, swanctlConf string) *charon {
	t.Helper()
	state, err := os.MkdirTemp("", "espx-charon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	os.Mkdir(filepath.Join(state, "run"), 0o700)
	c := &charon{state: state, vici: "unix://" + filepath.Join(state, "run", "charon.vici")}
	conf := fmt.Sprintf(`charon {
	load = random nonce drbg openssl aesni aes sha1 sha2 hmac gcm ctr ccm chapoly cmac xcbc curve25519 gmp kdf pem pkcs1 pubkey x509 kernel-libipsec kernel-netlink socket-default vici
	port = 500
	port_nat_t = 4500
	install_routes = no
	# The old SA of a rekeyed child goes after 1 s instead of 5.
	delete_rekeyed_delay = 1
	filelog {
		main {
			path = %s/charon.log
			time_format = %%H:%%M:%%S
			flush_line = yes
			default = 1
			chd = 4
		}
	}
	syslog {
		daemon {
			default = -1
		}
	}
}
`, state)
	if err := os.WriteFile(filepath.Join(state, "strongswan.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "swanctl.conf"), []byte(swanctlConf), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("ip", "netns", "exec", ns.Name, "unshare", "--mount", "--propagation", "private",
		"env", "STRONGSWAN_CONF="+filepath.Join(state, "strongswan.conf"),
		"sh", "-c", `mount --bind "$1/run" /run && exec "$2"`, "charon", state, charonPath)
	out, _ := os.Create(filepath.Join(state, "charon.stdout"))
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every exec above replaces its process, so this PID is charon's.
	t.Cleanup(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(state, "charon.log"))
			t.Logf("charon.log:\n%s", log)
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(state, "run", "charon.vici")); err == nil {
			break
		}
		if i == 100 {
			t.Fatal("charon's vici socket did not appear")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.swanctl(t, "--load-all", "--noprompt", "--file", filepath.Join(state, "swanctl.conf"))
	return c
}

func (c *charon) swanctl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("swanctl", append(args, "--uri", c.vici)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.state, "strongswan.conf"), "SWANCTL_DIR="+c.state)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swanctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// childSPIs reads swanctl's view of the installed child SA: its inbound
// and outbound SPIs.
func (c *charon) childSPIs(t *testing.T) (in, out uint32, ok bool) {
	s := c.swanctl(t, "--list-sas")
	if !strings.Contains(s, "INSTALLED") {
		return 0, 0, false
	}
	mi := regexp.MustCompile(`\bin\s+([0-9a-f]{8})`).FindStringSubmatch(s)
	mo := regexp.MustCompile(`\bout\s+([0-9a-f]{8})`).FindStringSubmatch(s)
	if mi == nil || mo == nil {
		return 0, 0, false
	}
	fmt.Sscanf(mi[1], "%x", &in)
	fmt.Sscanf(mo[1], "%x", &out)
	return in, out, true
}

// logSize is where charon's log ends now.
func (c *charon) logSize(t *testing.T) int64 {
	st, err := os.Stat(filepath.Join(c.state, "charon.log"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// loggedKeys reads the child SA keys charon logged at level 4 after offset
// from, by name ("encryption initiator", "integrity responder", ...).
func (c *charon) loggedKeys(t *testing.T, from int64) map[string][]byte {
	f, err := os.Open(filepath.Join(c.state, "charon.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	head := regexp.MustCompile(`\[CHD\].*?(encryption|integrity) (initiator|responder) key => (\d+) bytes`)
	row := regexp.MustCompile(`\[CHD\].*?\s+\d+: ((?:[0-9A-F]{2} ?)+)`)
	var cur string
	var want int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := head.FindStringSubmatch(line); m != nil {
			cur = m[1] + " " + m[2]
			fmt.Sscan(m[3], &want)
			keys[cur] = nil
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && cur != "" && len(keys[cur]) < want {
			b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(m[1]), " ", ""))
			if err == nil {
				keys[cur] = append(keys[cur], b...)
			}
			continue
		}
		cur = ""
	}
	return keys
}

// syncBuffer is a log sink that the daemon's goroutines and the test can
// share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStrongSwanInterop(t *testing.T) {
	requireStrongSwan(t)
	nsA := netnstest.New(t, "espx-ike-a")
	nsB := netnstest.New(t, "espx-ike-b")
	netnstest.Veth(t, nsA, "wan0", nsB, "wan0")
	nsA.IP(t, "addr", "add", "192.0.2.1/24", "dev", "wan0")
	nsB.IP(t, "addr", "add", "192.0.2.2/24", "dev", "wan0")
	nsB.IP(t, "addr", "add", "203.0.113.1/32", "dev", "lo")

	psk := []byte("a pre-shared key for the interop test")
	conf := fmt.Sprintf(`connections {
  espx {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = aes128gcm16-prfsha256-x25519,aes256-sha256-ecp256
    local {
      auth = psk
      id = gw-b.example.net
    }
    remote {
      auth = psk
      id = gw-a.example.net
    }
    children {
      espx {
        mode = tunnel
        local_ts = 203.0.113.0/24
        remote_ts = 198.51.100.0/24
        esp_proposals = aes128gcm16,aes256-sha256,aes256-sha256-ecp256
        start_action = none
      }
    }
  }
}
secrets {
  ike-espx {
    id-local = gw-b.example.net
    id-remote = gw-a.example.net
    secret = 0x%x
  }
}
`, psk)
	ch := startCharon(t, nsB, conf)

	var tr *UDPTransport
	if err := nsA.Do(func() (err error) {
		tr, err = ListenUDP([]netip.Addr{gwA.Addr()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)

	for _, tc := range []struct{ name, ike, esp string }{
		{"espx initiates/gcm", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
		{"espx initiates/cbc", "aes256-sha256-ecp256", "aes256-sha256"},
		{"strongSwan initiates/gcm", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
		{"espx initiates/rekey by strongSwan", "aes128gcm16-prfsha256-x25519", "aes128gcm16"},
		{"espx initiates/rekey by strongSwan with PFS", "aes128gcm16-prfsha256-x25519", "aes256-sha256-ecp256"},
		{"espx initiates/IKE rekey then child rekey by strongSwan", "aes256-sha256-ecp256", "aes128gcm16"},
		{"espx initiates/rekey by espx with PFS, delete by espx", "aes128gcm16-prfsha256-x25519", "aes256-sha256-ecp256"},
		{"espx initiates/IKE rekey by espx, then rekey by espx with PFS", "aes128gcm16-prfsha256-x25519", "aes256-sha256-ecp256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst := newFakeInstaller(0xe5000000)
			cfg := &PeerConfig{
				Name: "to-b", Local: gwA, Remote: gwB,
				LocalID: &ID{IDType: IDFQDN, Data: []byte("gw-a.example.net")}, RemoteID: &ID{IDType: IDFQDN, Data: []byte("gw-b.example.net")},
				PSK: psk, IKE: mustParse(t, ProtoIKE, tc.ike), ESP: mustParse(t, ProtoESP, tc.esp),
				LocalTS:  []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("198.51.100.0/24"))},
				RemoteTS: []TrafficSelector{SelectorFromPrefix(netip.MustParsePrefix("203.0.113.0/24"))},
			}
			logs := &syncBuffer{}
			logFrom := ch.logSize(t)
			d, err := NewDaemon(tr, inst, []*PeerConfig{cfg}, slog.New(slog.NewTextHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			tr.Serve(d)
			defer func() {
				if t.Failed() {
					t.Logf("espx log:\n%s", logs.String())
				}
			}()
			initiator := strings.HasPrefix(tc.name, "espx")
			var ike *IKESA
			if initiator {
				ike, err = d.Initiate("to-b")
				if err != nil {
					t.Fatal(err)
				}
				if err := waitSA(t, ike); err != nil {
					t.Fatal(err)
				}
			} else {
				ch.swanctl(t, "--initiate", "--child", "espx", "--timeout", "20")
			}
			var sIn, sOut uint32
			for i := 0; ; i++ {
				var ok bool
				if sIn, sOut, ok = ch.childSPIs(t); ok {
					break
				}
				if i == 50 {
					t.Fatalf("strongSwan shows no installed child SA:\n%s", ch.swanctl(t, "--list-sas"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			if strings.Contains(tc.name, "IKE rekey") {
				// The new IKE SA replaces the old one; the child rekey
				// below then runs over it, which proves its keys.
				var before uint64
				d.mu.Lock()
				for spi := range d.sas {
					before = spi
				}
				d.mu.Unlock()
				if strings.Contains(tc.name, "IKE rekey by espx") {
					if err := d.RekeyIKE("to-b"); err != nil {
						t.Fatal(err)
					}
				} else {
					ch.swanctl(t, "--rekey", "--ike", "espx")
				}
				for i := 0; ; i++ {
					d.mu.Lock()
					_, old := d.sas[before]
					n := len(d.sas)
					d.mu.Unlock()
					if !old && n == 1 {
						break
					}
					if i == 100 {
						t.Fatalf("IKE rekey: espx has %d IKE SAs, old one still there: %v\n%s", n, old, ch.swanctl(t, "--list-sas"))
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			if strings.Contains(tc.name, "rekey") {
				// strongSwan rekeys the child SA (CREATE_CHILD_SA with
				// REKEY_SA), then deletes the old one; only the new pair
				// may remain, on both sides.
				oldIn, oldOut := sIn, sOut
				logFrom = ch.logSize(t)
				if strings.Contains(tc.name, "by espx") {
					if err := d.RekeyChild(oldOut); err != nil {
						t.Fatal(err)
					}
				} else {
					ch.swanctl(t, "--rekey", "--child", "espx")
				}
				for i := 0; ; i++ {
					inst.mu.Lock()
					n := len(inst.sas)
					_, oldGone := inst.sas[oldOut]
					inst.mu.Unlock()
					var ok bool
					sIn, sOut, ok = ch.childSPIs(t)
					if ok && sIn != oldIn && sOut != oldOut && n == 2 && !oldGone {
						break
					}
					if i == 100 {
						t.Fatalf("rekey: strongSwan %08x/%08x (was %08x/%08x), espx has %d SAs:\n%s", sIn, sOut, oldIn, oldOut, n, ch.swanctl(t, "--list-sas"))
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			inst.mu.Lock()
			ours := map[uint32]*ChildSA{}
			for spi, c := range inst.sas {
				ours[spi] = c
			}
			inst.mu.Unlock()
			in, out := ours[sOut], ours[sIn]
			if in == nil || !in.Inbound || out == nil || out.Inbound {
				t.Fatalf("strongSwan's SPIs in %08x out %08x do not match ours %v", sIn, sOut, inst.sas)
			}
			if !in.Encap || !out.Encap || out.Remote.Port() != PortNATT {
				t.Errorf("libipsec forces NAT traversal, yet encap %v/%v to %v", in.Encap, out.Encap, out.Remote)
			}
			keys := ch.loggedKeys(t, logFrom)
			// charon's "initiator" keys are those from the initiator of
			// the exchange that made the child SA to its responder: espx
			// only for an IKE_AUTH espx started; strongSwan started the
			// rekeys.
			i2r, r2i := out, in
			if !initiator || strings.Contains(tc.name, "rekey by strongSwan") {
				i2r, r2i = in, out
			}
			for name, want := range map[string][]byte{
				"encryption initiator": i2r.Transform.EncrKey, "encryption responder": r2i.Transform.EncrKey,
				"integrity initiator": i2r.Transform.IntegKey, "integrity responder": r2i.Transform.IntegKey,
			} {
				if got := keys[name]; !bytes.Equal(got, want) {
					t.Errorf("%s key: strongSwan has %x, espx %x", name, got, want)
				}
			}
			// One side deletes the IKE SA; the other answers; both remove
			// the child SAs and the IKE SA.
			if strings.Contains(tc.name, "delete by espx") {
				ike.Delete()
				for i := 0; strings.Contains(ch.swanctl(t, "--list-sas"), "ESTABLISHED"); i++ {
					if i == 50 {
						t.Fatalf("strongSwan still has the IKE SA espx deleted")
					}
					time.Sleep(50 * time.Millisecond)
				}
			} else {
				ch.swanctl(t, "--terminate", "--ike", "espx", "--timeout", "10")
			}
			for i := 0; ; i++ {
				inst.mu.Lock()
				n := len(inst.sas)
				inst.mu.Unlock()
				d.mu.Lock()
				m := len(d.sas)
				d.mu.Unlock()
				if n == 0 && m == 0 {
					break
				}
				if i == 50 {
					t.Fatalf("after strongSwan's delete espx still has %d child SAs and %d IKE SAs", n, m)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
