// Package sswantest runs a real strongSwan charon (Debian's 5.9.8 with
// kernel-libipsec, which does ESP in userspace and always encapsulates it
// in UDP) in a test's network namespace, as an IKEv2 and ESP peer that we
// did not write.
package sswantest

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/espx/espx/internal/netnstest"
)

// CharonPath is where Debian installs charon.
const CharonPath = "/usr/lib/ipsec/charon"

// Require skips the test unless strongSwan's charon with kernel-libipsec,
// swanctl, unshare and /dev/net/tun are there, and the test runs as root.
func Require(t testing.TB) {
	netnstest.Require(t)
	for _, p := range []string{CharonPath, "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"} {
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

// Charon is one strongSwan daemon a test started.
type Charon struct {
	done  chan struct{} // closed when charon has exited
	state string
	vici  string
	cmd   *exec.Cmd
}

// Options change charon's configuration.
type Options struct {
	// InstallRoutes lets charon route the remote selectors into its
	// libipsec TUN device, as a strongSwan gateway does.
	InstallRoutes bool
}

// Start runs charon in ns with a private /run (its pid file and vici
// socket paths are fixed), loads swanctlConf, and stops charon (by PID)
// when the test ends.
func Start(t testing.TB, ns *netnstest.NS, swanctlConf string, opts ...Options) *Charon {
	t.Helper()
	state, err := os.MkdirTemp("", "espx-charon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	os.Mkdir(filepath.Join(state, "run"), 0o700)
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	routes := "install_routes = no"
	if o.InstallRoutes {
		// As the interop scripts do: routes in a table of their own,
		// looked up before main.
		routes = "install_routes = yes\n\trouting_table = 220\n\trouting_table_prio = 220\n\tthreads = 16"
	}
	c := &Charon{state: state, vici: "unix://" + filepath.Join(state, "run", "charon.vici")}
	conf := fmt.Sprintf(`charon {
	load = random nonce drbg openssl aesni aes sha1 sha2 hmac gcm ctr ccm chapoly cmac xcbc curve25519 gmp kdf pem pkcs1 pubkey x509 kernel-libipsec kernel-netlink socket-default vici
	port = 500
	port_nat_t = 4500
	%s
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
`, routes, state)
	if err := os.WriteFile(filepath.Join(state, "strongswan.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "swanctl.conf"), []byte(swanctlConf), 0o600); err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("ip", "netns", "exec", ns.Name, "unshare", "--mount", "--propagation", "private",
		"env", "STRONGSWAN_CONF="+filepath.Join(state, "strongswan.conf"),
		"sh", "-c", `mount --bind "$1/run" /run && exec "$2"`, "charon", state, CharonPath)
	out, _ := os.Create(filepath.Join(state, "charon.stdout"))
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every exec above replaces its process, so this PID is charon's.
	c.done = make(chan struct{})
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.Stop()
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
	c.Swanctl(t, "--load-all", "--noprompt", "--file", filepath.Join(state, "swanctl.conf"))
	return c
}

// Stop ends charon (SIGTERM, then SIGKILL after 5 s) and waits for it;
// the test's cleanup calls it too.
func (c *Charon) Stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// Kill ends charon with SIGKILL, as a crash would: it tells no peer.
func (c *Charon) Kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// Swanctl runs swanctl against this charon and fails the test if it fails.
func (c *Charon) Swanctl(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("swanctl", append(args, "--uri", c.vici)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.state, "strongswan.conf"), "SWANCTL_DIR="+c.state)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("swanctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// ChildSPIs reads swanctl's view of the installed child SA: its inbound
// and outbound SPIs.
func (c *Charon) ChildSPIs(t testing.TB) (in, out uint32, ok bool) {
	s := c.Swanctl(t, "--list-sas")
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

// LogSize is where charon's log ends now.
func (c *Charon) LogSize(t testing.TB) int64 {
	st, err := os.Stat(filepath.Join(c.state, "charon.log"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// LoggedKeys reads the child SA keys charon logged at level 4 after offset
// from, by name ("encryption initiator", "integrity responder", ...).
func (c *Charon) LoggedKeys(t testing.TB, from int64) map[string][]byte {
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
