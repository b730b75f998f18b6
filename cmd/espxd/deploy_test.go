package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/espx/espx/internal/netnstest"
	"golang.org/x/sys/unix"
)

const unitFile = "../../deploy/systemd/espxd.service"

// unitCaps is the capability bounding set of the systemd unit, as
// lower-case names without CAP_.
func unitCaps(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapabilityBoundingSet="); ok {
			var caps []string
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			return caps
		}
	}
	t.Fatal("the unit sets no CapabilityBoundingSet")
	return nil
}

// The unit as systemd reads it: every directive known, the binary there.
func TestSystemdUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := buildBinaries(t)
	unit := filepath.Join(t.TempDir(), "espxd.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/sbin/espxd", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// espxd negotiates and carries an on-demand tunnel with no capability but
// those of the unit's bounding set (IKE on port 500, netlink, XDP
// programs and maps, AF_XDP sockets and UMEM): gwA's daemon is started
// under setpriv with just them. Each of them is needed: without any one
// of CAP_BPF, CAP_PERFMON, CAP_NET_RAW or CAP_IPC_LOCK (as the unit sets
// no lower memlock limit than root's) espxd refuses to start, said
// plainly.
func TestSystemdUnitCapabilitiesSuffice(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	caps := unitCaps(t)
	tp := newTopo(t, 1)
	tp.wrap = []string{"setpriv", "--inh-caps=-all", "--bounding-set=-all,+" + strings.Join(caps, ",+"), "--"}
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	a := tp.startDaemon(t, tp.gwA, "gwA", fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64"), sa)
	tp.startDaemon(t, tp.gwB, "gwB", fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64"), sb)
	for _, p := range []struct {
		from *netnstest.NS
		dst  string
	}{{tp.hostA, "203.0.113.20"}, {tp.hostB, "198.51.100.10"}} {
		if n := ping(t, p.from, p.dst, 3, 56); n != 3 {
			t.Fatalf("ping %s with gwA's espxd confined to %v: %d of 3 replies", p.dst, caps, n)
		}
	}
	// The daemon did run with those capabilities and no others.
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var eff uint64
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	var want uint64
	for _, c := range caps {
		n, ok := capNumbers[c]
		if !ok {
			t.Fatalf("capability %q unknown to the test", c)
		}
		want |= 1 << n
	}
	if eff != want {
		t.Errorf("gwA's espxd runs with capabilities %#x, want %#x (%v)", eff, want, caps)
	}
}

var capNumbers = map[string]uint{
	"net_admin": unix.CAP_NET_ADMIN, "net_raw": unix.CAP_NET_RAW, "net_bind_service": unix.CAP_NET_BIND_SERVICE,
	"bpf": unix.CAP_BPF, "perfmon": unix.CAP_PERFMON, "sys_admin": unix.CAP_SYS_ADMIN, "ipc_lock": unix.CAP_IPC_LOCK,
}

// A data plane that cannot start (here: no such interface) makes espxd
// exit with the reason, having left nothing behind, and never panic.
func TestStartFailsCleanly(t *testing.T) {
	netnstest.Require(t)
	bin, _ := buildBinaries(t)
	ns := netnstest.New(t, "espx-nostart")
	dir := t.TempDir()
	conf := filepath.Join(dir, "espxd.toml")
	if err := os.WriteFile(conf, []byte(`
[dataplane]
protected = "lo"
unprotected = "nosuchif0"
[control]
socket = "`+filepath.Join(dir, "s.sock")+`"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "timeout", "20", bin, "-config", conf)
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "panic") || !strings.Contains(string(out), "nosuchif0") || !strings.Contains(string(out), "no such network interface") {
		t.Errorf("espxd with a missing interface: %v\n%s", err, out)
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 124 {
		t.Errorf("espxd did not exit within 20 s:\n%s", out)
	}
}

// Keys are logged only at the most verbose level: -log-keys alone is
// refused before anything starts.
func TestLogKeysNeedsVerbose(t *testing.T) {
	bin, _ := buildBinaries(t)
	out, err := exec.Command(bin, "-log-keys", "-config", "/nonexistent").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "-log-keys needs -v") {
		t.Errorf("espxd -log-keys without -v: %v\n%s", err, out)
	}
}
