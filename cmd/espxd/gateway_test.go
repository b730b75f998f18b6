package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/espx/espx/control/api"
	"github.com/espx/espx/internal/netnstest"
	"github.com/espx/espx/internal/sswantest"
)

// The gateway tests run two espxd processes in network namespaces:
//
//	hostA ── gwA ══ wire ══ gwB ── hostB
//
// hostA 198.51.100.10/24 2001:db8:1::10/64 behind gwA (.1), hostB
// 203.0.113.20/24 2001:db8:2::20/64 behind gwB (.1); gwA 192.0.2.1 and
// 2001:db8::1, gwB 192.0.2.2 and 2001:db8::2 on the unprotected link,
// which goes through a bridge in the wire namespace so that tcpdump there
// sees the ESP on it. The kernels of the gateways do not forward
// (net.ipv4.ip_forward is 0 in a new namespace): every packet that makes
// it from one host to the other went through espx.

// python is Debian's, which .ci/deps gives scapy.
const python = "/usr/bin/python3"

type topo struct {
	hostA, gwA, wire, gwB, hostB *netnstest.NS
	dir                          string
	bin, ctl                     string
	// wrap, if set, runs espxd in gwA through this command (which must
	// exec it), e.g. to drop capabilities.
	wrap []string
}

var buildOnce struct {
	dir string
	err error
}

// buildBinaries builds espxd and espxctl once per test binary run.
func buildBinaries(t *testing.T) (string, string) {
	t.Helper()
	if buildOnce.dir == "" && buildOnce.err == nil {
		dir, err := os.MkdirTemp("", "espxd-test-")
		if err != nil {
			t.Fatal(err)
		}
		buildOnce.dir = dir
		for _, c := range []string{"espxd", "espxctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, c), "github.com/espx/espx/cmd/"+c).CombinedOutput()
			if err != nil {
				buildOnce.err = fmt.Errorf("build %s: %v: %s", c, err, out)
			}
		}
	}
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return filepath.Join(buildOnce.dir, "espxd"), filepath.Join(buildOnce.dir, "espxctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.dir != "" {
		os.RemoveAll(buildOnce.dir)
	}
	os.Exit(code)
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, c := range tools {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s (installed by .ci/deps): %v", c, err)
		}
	}
}

func newTopo(t *testing.T, queues int) *topo {
	t.Helper()
	netnstest.Require(t)
	requireTools(t, "ping", "ethtool")
	bin, ctl := buildBinaries(t)
	tp := &topo{
		hostA: netnstest.New(t, "espx-hostA"), gwA: netnstest.New(t, "espx-gwA"),
		wire: netnstest.New(t, "espx-wire"),
		gwB:  netnstest.New(t, "espx-gwB"), hostB: netnstest.New(t, "espx-hostB"),
		dir: t.TempDir(), bin: bin, ctl: ctl,
	}
	// Links come up without duplicate address detection, as on a gateway
	// whose links have long been up: the kernel solicits IPv6 neighbours
	// from the link-local address, which it will not use until DAD is over.
	for _, ns := range []*netnstest.NS{tp.hostA, tp.gwA, tp.wire, tp.gwB, tp.hostB} {
		netnstest.Run(t, "ip", "netns", "exec", ns.Name, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	netnstest.VethQueues(t, tp.hostA, "eth0", tp.gwA, "prot", queues)
	netnstest.VethQueues(t, tp.gwA, "unprot", tp.wire, "wa", queues)
	netnstest.VethQueues(t, tp.wire, "wb", tp.gwB, "unprot", queues)
	netnstest.VethQueues(t, tp.hostB, "eth0", tp.gwB, "prot", queues)
	tp.wire.IP(t, "link", "add", "br0", "type", "bridge")
	tp.wire.IP(t, "link", "set", "wa", "master", "br0")
	tp.wire.IP(t, "link", "set", "wb", "master", "br0")
	tp.wire.IP(t, "link", "set", "br0", "up")
	for _, c := range []struct {
		ns   *netnstest.NS
		dev  string
		addr []string
	}{
		{tp.hostA, "eth0", []string{"198.51.100.10/24", "2001:db8:1::10/64"}},
		{tp.gwA, "prot", []string{"198.51.100.1/24", "2001:db8:1::1/64"}},
		{tp.gwA, "unprot", []string{"192.0.2.1/24", "2001:db8::1/64"}},
		{tp.gwB, "unprot", []string{"192.0.2.2/24", "2001:db8::2/64"}},
		{tp.gwB, "prot", []string{"203.0.113.1/24", "2001:db8:2::1/64"}},
		{tp.hostB, "eth0", []string{"203.0.113.20/24", "2001:db8:2::20/64"}},
	} {
		for _, a := range c.addr {
			c.ns.IP(t, "addr", "add", a, "dev", c.dev, "nodad")
		}
		// XDP sees what the kernel hands the device: segments no larger
		// than the MTU, with their checksums filled in.
		netnstest.Run(t, "ip", "netns", "exec", c.ns.Name, "ethtool", "-K", c.dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off")
	}
	tp.hostA.IP(t, "route", "add", "default", "via", "198.51.100.1")
	tp.hostA.IP(t, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	tp.hostB.IP(t, "route", "add", "default", "via", "203.0.113.1")
	tp.hostB.IP(t, "-6", "route", "add", "default", "via", "2001:db8:2::1")
	// The gateways route the other side's hosts to the peer, for traffic
	// that bypasses the tunnel.
	tp.gwA.IP(t, "route", "add", "203.0.113.0/24", "via", "192.0.2.2")
	tp.gwB.IP(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.1")
	return tp
}

// ping runs ping in ns and returns how many replies came back; a reply
// that comes twice fails the test.
func ping(t *testing.T, ns *netnstest.NS, dst string, count int, size int, opts ...string) int {
	t.Helper()
	args := append([]string{"ip", "netns", "exec", ns.Name, "ping", "-n", "-q", "-c", fmt.Sprint(count),
		"-i", "0.05", "-W", "1", "-s", fmt.Sprint(size)}, opts...)
	out, _ := netnstest.RunErr(append(args, dst)...)
	if strings.Contains(out, "duplicates") {
		// A packet delivered twice: a replay the gateways let through.
		t.Errorf("ping %s: duplicates:\n%s", dst, out)
	}
	var sent, recv int
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "packets transmitted") {
			fmt.Sscanf(l, "%d packets transmitted, %d received", &sent, &recv)
		}
	}
	return recv
}

// warm has each gateway's kernel resolve its neighbours, so that the
// first packets through espx find them resolved. (espx asks the kernel to
// resolve unknown next hops itself, and drops meanwhile; the tests want
// exact counts.)
func (tp *topo) warm(t *testing.T) {
	t.Helper()
	for _, c := range []struct {
		ns  *netnstest.NS
		dst []string
	}{
		{tp.gwA, []string{"198.51.100.10", "192.0.2.2", "2001:db8:1::10", "2001:db8::2"}},
		{tp.gwB, []string{"203.0.113.20", "192.0.2.1", "2001:db8:2::20", "2001:db8::1"}},
	} {
		for _, d := range c.dst {
			if ping(t, c.ns, d, 1, 56) != 1 {
				t.Fatalf("%s cannot reach %s before espx starts", c.ns.Name, d)
			}
		}
	}
}

// checkMetrics scrapes the gateway in ns and checks that its counters
// add up from Prometheus's side too.
func checkMetrics(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	m := scrape(t, ns)
	in := m["espx_dataplane_received_packets_total"] + m["espx_dataplane_held_packets_sent_total"] + m["espx_dataplane_icmp_errors_sent_total"] +
		m["espx_dataplane_neighbour_resumed_packets_total"] + m["espx_dataplane_fragments_made_total"]
	out := m["espx_dataplane_transmitted_packets_total"] + m["espx_dataplane_dropped_packets_total"]
	held := m["espx_dataplane_acquires_raised_total"] + m["espx_dataplane_acquires_suppressed_total"] +
		m["espx_dataplane_neighbour_held_packets_total"]
	if in == 0 || in != out+held-m[`espx_dataplane_dropped_packets_total{reason="acquire"}`] {
		t.Errorf("%s metrics: %v in, %v out or dropped, %v trapped", ns.Name, in, out, held)
	}
	if m["espx_sa_packets_total"] == 0 || m["espx_xdp_received_packets_total"] != m["espx_dataplane_received_packets_total"] {
		t.Errorf("%s metrics: per-SA packets %v, AF_XDP received %v of %v", ns.Name, m["espx_sa_packets_total"],
			m["espx_xdp_received_packets_total"], m["espx_dataplane_received_packets_total"])
	}
}

// scrape fetches espxd's /metrics inside ns and sums each metric over its
// labels; the series of drop reason "acquire" is kept apart too.
func scrape(t *testing.T, ns *netnstest.NS) map[string]float64 {
	t.Helper()
	var conn net.Conn
	if err := ns.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", "127.0.0.1:9560", 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("metrics in %s: %v", ns.Name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %v %v", resp.Status, err)
	}
	m := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		series, val, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		var v float64
		fmt.Sscan(val, &v)
		name, _, _ := strings.Cut(series, "{")
		m[name] += v
		if name == "espx_dataplane_dropped_packets_total" && strings.Contains(series, `reason="acquire"`) {
			m[`espx_dataplane_dropped_packets_total{reason="acquire"}`] += v
		}
	}
	return m
}

type gwParams struct {
	Local, Remote       [2]string // outer addresses, IPv4 and IPv6
	LocalNet, RemoteNet [2]string
	OutSPI, InSPI       string
	OutKey, InKey       string
	Encap               bool
	Outer6              bool
	Socket              string
	Queues              int
	Extra               string
}

const gwTemplate = `
[dataplane]
protected = "prot"
unprotected = "unprot"
queues = {{.Queues}}
default-policy = "discard"
sp-hash-ipv4 = [16, 16]

[control]
socket = "{{.Socket}}"

[metrics]
listen = "127.0.0.1:9560"
per-sa = 10

{{range $f, $x := .LocalNet}}
[[policy]]
dir = "out"
local = "{{index $.LocalNet $f}}"
remote = "{{index $.RemoteNet $f}}"
action = "protect"
reqid = 1
priority = 100

[[policy]]
dir = "fwd"
local = "{{index $.LocalNet $f}}"
remote = "{{index $.RemoteNet $f}}"
action = "protect"
reqid = 1
priority = 100
{{end}}

[[sa]]
dir = "out"
spi = "{{.OutSPI}}"
reqid = 1
src = "{{if .Outer6}}{{index .Local 1}}{{else}}{{index .Local 0}}{{end}}"
dst = "{{if .Outer6}}{{index .Remote 1}}{{else}}{{index .Remote 0}}{{end}}"
encryption = "aes-gcm-16"
key = "{{.OutKey}}"
encap = {{.Encap}}

[[sa]]
dir = "in"
spi = "{{.InSPI}}"
reqid = 1
src = "{{if .Outer6}}{{index .Remote 1}}{{else}}{{index .Remote 0}}{{end}}"
dst = "{{if .Outer6}}{{index .Local 1}}{{else}}{{index .Local 0}}{{end}}"
encryption = "aes-gcm-16"
key = "{{.InKey}}"
encap = {{.Encap}}
{{.Extra}}
`

// Test keys: 16 bytes of AES key and 4 of salt each way.
const (
	keyAB = "0x00112233445566778899aabbccddeeff01020304"
	keyBA = "0xffeeddccbbaa99887766554433221100a0b0c0d0"
)

// dieWithTest makes a process the test starts get SIGKILL if the test
// binary dies without its cleanups (a -timeout panic, say), so that no
// daemon outlives it.
func dieWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// syncBuffer is a bytes.Buffer that a process's output goroutine writes
// while the test reads it.
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

type daemon struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	socket string
	exited chan struct{} // closed when the process has exited, err set
	err    error
}

// startGateways writes both configurations and starts espxd in gwA and
// gwB; the daemons are stopped (by PID) when the test ends.
func (tp *topo) startGateways(t *testing.T, encap, outer6 bool, queues int, extraA, extraB string) (a, b *daemon) {
	t.Helper()
	pa := gwParams{
		Local: [2]string{"192.0.2.1", "2001:db8::1"}, Remote: [2]string{"192.0.2.2", "2001:db8::2"},
		LocalNet: [2]string{"198.51.100.0/24", "2001:db8:1::/64"}, RemoteNet: [2]string{"203.0.113.0/24", "2001:db8:2::/64"},
		OutSPI: "0x1001", InSPI: "0x2001", OutKey: keyAB, InKey: keyBA, Encap: encap, Outer6: outer6,
		Socket: filepath.Join(tp.dir, "a.sock"), Queues: queues, Extra: extraA,
	}
	pb := gwParams{
		Local: pa.Remote, Remote: pa.Local, LocalNet: pa.RemoteNet, RemoteNet: pa.LocalNet,
		OutSPI: pa.InSPI, InSPI: pa.OutSPI, OutKey: keyBA, InKey: keyAB, Encap: encap, Outer6: outer6,
		Socket: filepath.Join(tp.dir, "b.sock"), Queues: queues, Extra: extraB,
	}
	tmpl := template.Must(template.New("gw").Parse(gwTemplate))
	start := func(ns *netnstest.NS, name string, p gwParams) *daemon {
		var conf bytes.Buffer
		if err := tmpl.Execute(&conf, p); err != nil {
			t.Fatal(err)
		}
		return tp.startDaemon(t, ns, name, conf.String(), p.Socket)
	}
	return start(tp.gwA, "gwA", pa), start(tp.gwB, "gwB", pb)
}

// startDaemon starts espxd in ns with the configuration conf, whose
// control socket is socket, waits until it answers, and stops it (by PID)
// when the test ends.
func (tp *topo) startDaemon(t *testing.T, ns *netnstest.NS, name, conf, socket string) *daemon {
	t.Helper()
	path := filepath.Join(tp.dir, name+".toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: new(syncBuffer), socket: socket, exited: make(chan struct{})}
	args := []string{"netns", "exec", ns.Name}
	if ns == tp.gwA {
		args = append(args, tp.wrap...)
	}
	d.cmd = exec.Command("ip", append(args, tp.bin, "-config", path)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = dieWithTest()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		// ip netns exec execs espxd, so this PID is espxd's own.
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("%s did not stop on SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, d.log.String())
		}
	})
	// Running once the control socket answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := tp.ctlErr(d, "sas"); err == nil {
			break
		}
		select {
		case <-d.exited:
			t.Fatalf("%s exited: %v\n%s", name, d.err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up after 10 s:\n%s", name, d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

func (tp *topo) ctlErr(d *daemon, cmd string) (string, error) {
	out, err := exec.Command(tp.ctl, "-socket", d.socket, "-json", cmd).CombinedOutput()
	return string(out), err
}

type ctlCounters struct {
	Cores []struct {
		Core     int               `json:"core"`
		Counters map[string]uint64 `json:"counters"`
	} `json:"cores"`
}

// counters sums the daemon's per-core counters.
func (tp *topo) counters(t *testing.T, d *daemon) map[string]uint64 {
	t.Helper()
	cores := tp.perCore(t, d)
	sum := map[string]uint64{}
	for _, core := range cores {
		for k, v := range core {
			sum[k] += v
		}
	}
	sum["cores"] = uint64(len(cores))
	return sum
}

// ask sends d the espxctl command cmd and returns its decoded answer and
// the raw JSON.
func (tp *topo) ask(t *testing.T, d *daemon, cmd string) (api.Response, string) {
	t.Helper()
	out, err := tp.ctlErr(d, cmd)
	if err != nil {
		t.Fatalf("espxctl %s: %v: %s", cmd, err, out)
	}
	var r api.Response
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r, out
}

// balanced checks that every frame a gateway received went out or was
// dropped for a counted reason (or held and sent later). An ICMP error is
// a packet the gateway made, sent in place of one it dropped.
func balanced(t *testing.T, name string, c map[string]uint64) {
	t.Helper()
	var drops uint64
	for k, v := range c {
		if strings.HasPrefix(k, "drop_") {
			drops += v
		}
	}
	in := c["rx_packets_protected"] + c["rx_packets_unprotected"] + c["held_sent"] + c["icmp_sent"] + c["neigh_resumed"] + c["fragments"]
	out := c["tx_packets_protected"] + c["tx_packets_unprotected"]
	held := c["acquires"] + c["acquires_suppressed"] - c["drop_acquire"] + c["neigh_held"]
	if in != out+drops+held {
		t.Errorf("%s: %d in != %d out + %d dropped + %d held: %v", name, in, out, drops, held, c)
	}
}

func TestGatewayStaticTunnel(t *testing.T) {
	for _, c := range []struct {
		name          string
		encap, outer6 bool
	}{
		{"esp4", false, false},
		{"udp4", true, false},
		{"esp6", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := newTopo(t, 1)
			tp.warm(t)
			a, b := tp.startGateways(t, c.encap, c.outer6, 1, "", "")
			capture := tp.capture(t)
			for _, p := range []struct {
				from *netnstest.NS
				dst  string
			}{
				{tp.hostA, "203.0.113.20"}, {tp.hostB, "198.51.100.10"},
				{tp.hostA, "2001:db8:2::20"}, {tp.hostB, "2001:db8:1::10"},
			} {
				if n := ping(t, p.from, p.dst, 10, 56); n != 10 {
					t.Fatalf("ping %s from %s: %d of 10 replies", p.dst, p.from.Name, n)
				}
			}
			// Large packets that still fit the tunnel.
			if n := ping(t, tp.hostA, "203.0.113.20", 3, 1380); n != 3 {
				t.Fatalf("1380-byte ping: %d of 3 replies", n)
			}
			ca, cb := tp.counters(t, a), tp.counters(t, b)
			// 23 requests each way, and their replies.
			if ca["encrypted_packets"] < 23 || cb["decrypted_packets"] < 23 || ca["decrypted_packets"] < 23 {
				t.Errorf("encrypted %d at gwA, decrypted %d at gwB and %d at gwA; want at least 23", ca["encrypted_packets"], cb["decrypted_packets"], ca["decrypted_packets"])
			}
			pcap := capture()
			tp.checkWire(t, pcap, c.encap, c.outer6)
			// Captured ESP sent to gwB again is refused as replayed.
			out := netnstest.Run(t, "ip", "netns", "exec", tp.wire.Name, python, "testdata/esp_pcap.py", "replay", pcap, "wb", "0x1001")
			var replayed uint64
			fmt.Sscan(out, &replayed)
			if replayed < 23 {
				t.Fatalf("replayed %d packets", replayed)
			}
			cb2 := tp.counters(t, b)
			if got := cb2["drop_replay"]; got != replayed {
				t.Errorf("gwB counted %d replays of %d", got, replayed)
			}
			if cb2["decrypted_packets"] != cb["decrypted_packets"] {
				t.Errorf("replayed packets decrypted: %d then %d", cb["decrypted_packets"], cb2["decrypted_packets"])
			}
			// The SA counts them too, as espxctl shows.
			r, out := tp.ask(t, b, "sas")
			found := false
			for _, sa := range r.SAs {
				if sa.SPI == "0x00001001" && sa.Dir == "in" {
					found = true
					if sa.Replay != replayed {
						t.Errorf("gwB's SA 0x1001 counted %d replays of %d", sa.Replay, replayed)
					}
				}
			}
			if !found {
				t.Errorf("gwB has no inbound SA 0x1001: %s", out)
			}
			balanced(t, "gwA", tp.counters(t, a))
			balanced(t, "gwB", cb2)
			checkMetrics(t, tp.gwA)
			checkMetrics(t, tp.gwB)
		})
	}
}

// capture starts tcpdump on the wire's bridge, for ESP and ESP in UDP
// (in immediate mode: a capture stopped soon after the last packet must
// still hold it),
// and returns a function that stops it and returns the capture file.
func (tp *topo) capture(t *testing.T) func() string {
	t.Helper()
	requireTools(t, "tcpdump")
	path := filepath.Join(tp.dir, "wire.pcap")
	var errb syncBuffer
	cmd := exec.Command("ip", "netns", "exec", tp.wire.Name, "tcpdump", "-i", "br0", "--immediate-mode", "-U", "-n", "-w", path, "esp or udp port 4500 or ip6 proto 50")
	cmd.Stderr = &errb
	cmd.SysProcAttr = dieWithTest()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(errb.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() string {
		// -U writes each packet as it comes; give the last one a moment.
		time.Sleep(200 * time.Millisecond)
		stop()
		return path
	}
}

type wirePacket struct {
	SPI      uint32 `json:"spi"`
	Seq      uint32 `json:"seq"`
	OuterSrc string `json:"outer_src"`
	OuterDst string `json:"outer_dst"`
	Encap    bool   `json:"encap"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	Proto    int    `json:"proto"`
	ICMPType *int   `json:"icmp_type"`
}

// checkWire decrypts the captured ESP with scapy and the configured keys
// and checks that it carries the pings, in order of sequence number.
func (tp *topo) checkWire(t *testing.T, pcap string, encap, outer6 bool) {
	t.Helper()
	sas := filepath.Join(tp.dir, "sas.json")
	if err := os.WriteFile(sas, []byte(`{"1001": "`+keyAB[2:]+`", "2001": "`+keyBA[2:]+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "testdata/esp_pcap.py", "decrypt", pcap, sas).CombinedOutput()
	if err != nil {
		t.Fatalf("scapy: %v\n%s", err, out)
	}
	outer := map[uint32][2]string{0x1001: {"192.0.2.1", "192.0.2.2"}, 0x2001: {"192.0.2.2", "192.0.2.1"}}
	if outer6 {
		outer = map[uint32][2]string{0x1001: {"2001:db8::1", "2001:db8::2"}, 0x2001: {"2001:db8::2", "2001:db8::1"}}
	}
	lastSeq := map[uint32]uint32{}
	echoes := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var p wirePacket
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("scapy said %q: %v", l, err)
		}
		if o := outer[p.SPI]; o[0] != p.OuterSrc || o[1] != p.OuterDst || p.Encap != encap {
			t.Fatalf("spi %#x outer %s -> %s encap %v, want %v encap %v", p.SPI, p.OuterSrc, p.OuterDst, p.Encap, o, encap)
		}
		if p.Seq != lastSeq[p.SPI]+1 {
			t.Fatalf("spi %#x seq %d after %d", p.SPI, p.Seq, lastSeq[p.SPI])
		}
		lastSeq[p.SPI] = p.Seq
		if p.ICMPType != nil {
			echoes[fmt.Sprintf("%s>%s/%d", p.Src, p.Dst, *p.ICMPType)]++
		}
	}
	for _, want := range []string{
		"198.51.100.10>203.0.113.20/8", "203.0.113.20>198.51.100.10/0",
		"2001:db8:1::10>2001:db8:2::20/128", "2001:db8:2::20>2001:db8:1::10/129",
	} {
		if echoes[want] < 10 {
			t.Errorf("%d ICMP %s decrypted from the wire, want at least 10 (all: %v)", echoes[want], want, echoes)
		}
	}
}

func TestGatewayPolicies(t *testing.T) {
	tp := newTopo(t, 1)
	tp.warm(t)
	// gwA: hostA may talk to the peers' network in the clear; one host
	// behind gwB is off limits; another part of gwB's network is on
	// demand, with no SA.
	extraA := `
[acquire]
timeout = "3s"
hold = 2

[[policy]]
dir = "out"
local = "198.51.100.0/24"
remote = "192.0.2.0/24"
action = "bypass"

[[policy]]
dir = "fwd"
local = "198.51.100.0/24"
remote = "192.0.2.0/24"
action = "bypass"

[[policy]]
dir = "out"
local = "198.51.100.0/24"
remote = "203.0.113.99/32"
action = "discard"
priority = 10

[[policy]]
dir = "out"
local = "198.51.100.0/24"
remote = "203.0.113.128/25"
action = "protect"
reqid = 2
trap = true
priority = 50
`
	a, b := tp.startGateways(t, false, false, 1, extraA, "")
	if n := ping(t, tp.hostA, "192.0.2.2", 3, 56); n != 3 {
		t.Fatalf("bypass: %d of 3 replies from the peer's address", n)
	}
	if n := ping(t, tp.hostA, "203.0.113.99", 3, 56); n != 0 {
		t.Fatalf("discard: %d replies", n)
	}
	before := tp.counters(t, a)
	if n := ping(t, tp.hostA, "203.0.113.200", 5, 56); n != 0 {
		t.Fatalf("trap without an SA: %d replies", n)
	}
	ca := tp.counters(t, a)
	if ca["drop_policy_block"] != 3 {
		t.Errorf("policy_block %d, want 3", ca["drop_policy_block"])
	}
	if got := ca["acquires"] - before["acquires"]; got != 1 {
		t.Errorf("%d acquires for a burst of 5, want 1", got)
	}
	if got := ca["acquires_suppressed"] - before["acquires_suppressed"]; got != 4 {
		t.Errorf("%d acquires suppressed, want 4", got)
	}
	// A packet without DF that cannot fit the tunnel is fragmented before
	// encapsulation, and hostB reassembles it. (First: once hostA knows
	// the path MTU, it fragments such packets itself.)
	if n := ping(t, tp.hostA, "203.0.113.20", 2, 1472, "-M", "dont"); n != 2 {
		t.Errorf("1500-byte ping without DF: %d of 2 replies", n)
	}
	if ca := tp.counters(t, a); ca["fragments"] < 2 {
		t.Errorf("gwA made %d fragments, want at least 2", ca["fragments"])
	}
	// Path MTU: a packet that cannot fit the tunnel gets an ICMP
	// fragmentation-needed with the MTU inside it.
	out, _ := netnstest.RunErr("ip", "netns", "exec", tp.hostA.Name, "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", "203.0.113.20")
	if !strings.Contains(out, "mtu = 1438") {
		t.Errorf("oversize ping: no fragmentation needed with mtu 1438:\n%s", out)
	}
	if ca := tp.counters(t, a); ca["drop_too_big"] != 1 || ca["icmp_sent"] < 1 {
		t.Errorf("too_big %d icmp_sent %d", ca["drop_too_big"], ca["icmp_sent"])
	}
	// A packet with TTL 1 at the gateway gets a time exceeded from it.
	out, _ = netnstest.RunErr("ip", "netns", "exec", tp.hostA.Name, "ping", "-n", "-c", "1", "-W", "1", "-t", "1", "203.0.113.20")
	if !strings.Contains(out, "From 198.51.100.1") || !strings.Contains(out, "Time to live exceeded") {
		t.Errorf("TTL 1: no time exceeded from gwA:\n%s", out)
	}

	// The SPD as the operator sees it, and its thresholds changed while
	// traffic flows: at /32, /32 every policy here is listed, at /24, /24
	// the IPv4 ones are hashed (the IPv6 ones stay listed at /128), and
	// lookups find them where they are.
	ctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tp.ctl, append([]string{"-socket", a.socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("espxctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for _, c := range []struct {
		th             string
		hashed, listed int
		counter        string
		discard        *regexp.Regexp
	}{
		{"32", 0, 8, "spd_list_hits", regexp.MustCompile(`out\s+198\.51\.100\.0/24\s+203\.0\.113\.99/32\s+any\s+10\s+discard\s+-\s+list\n`)},
		{"24", 6, 2, "spd_hashed_hits", regexp.MustCompile(`out\s+198\.51\.100\.0/24\s+203\.0\.113\.99/32\s+any\s+10\s+discard\s+-\s+hash\n`)},
	} {
		if out := ctl("sp-hash", "ipv4", c.th, c.th); !strings.Contains(out, "sp-hash-ipv4 local "+c.th+" remote "+c.th) ||
			!strings.Contains(out, fmt.Sprintf("%d of 8 policies hashed", c.hashed)) {
			t.Errorf("espxctl sp-hash ipv4 %s %s: %s", c.th, c.th, out)
		}
		pols := ctl("policies")
		if strings.Count(pols, " hash\n") != c.hashed || strings.Count(pols, " list\n") != c.listed || !c.discard.MatchString(pols) {
			t.Errorf("espxctl policies at /%s:\n%s", c.th, pols)
		}
		before := tp.counters(t, a)[c.counter]
		if n := ping(t, tp.hostA, "203.0.113.20", 3, 56); n != 3 {
			t.Errorf("at /%s: %d of 3 replies", c.th, n)
		}
		if n := ping(t, tp.hostA, "203.0.113.99", 1, 56); n != 0 {
			t.Errorf("discard at /%s: %d replies", c.th, n)
		}
		if got := tp.counters(t, a)[c.counter] - before; got < 4 {
			t.Errorf("at /%s: %s up by %d, want at least 4", c.th, c.counter, got)
		}
	}
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "sp-hash", "ipv4", "33", "0").CombinedOutput(); err == nil || !strings.Contains(string(out), "prefix length") {
		t.Errorf("sp-hash ipv4 33 0 accepted: %v %s", err, out)
	}
	balanced(t, "gwA", tp.counters(t, a))
	balanced(t, "gwB", tp.counters(t, b))
	if n := strings.Count(a.log.String(), "kind=acquire"); n != 1 {
		t.Errorf("gwA logged %d acquire events, want 1:\n%s", n, a.log.String())
	}
}

// perCore returns each core's counters.
func (tp *topo) perCore(t *testing.T, d *daemon) []map[string]uint64 {
	t.Helper()
	out, err := tp.ctlErr(d, "counters")
	if err != nil {
		t.Fatalf("espxctl counters: %v: %s", err, out)
	}
	var c ctlCounters
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	var cores []map[string]uint64
	for _, core := range c.Cores {
		cores = append(cores, core.Counters)
	}
	return cores
}

type iperfResult struct {
	End struct {
		SumSent struct {
			Bytes       float64 `json:"bytes"`
			BitsPerSec  float64 `json:"bits_per_second"`
			Retransmits int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes      float64 `json:"bytes"`
			BitsPerSec float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf runs an iperf3 TCP test from client to server (or back, with
// reverse) for the given seconds with streams parallel connections.
func iperf(t *testing.T, server, client *netnstest.NS, addr string, seconds, streams int, reverse bool) iperfResult {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", server.Name, "iperf3", "-s", "-1", "-B", addr)
	srv.SysProcAttr = dieWithTest()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Wait() }()
	defer func() {
		select {
		case <-srvDone:
		case <-time.After(5 * time.Second):
			_ = srv.Process.Kill()
			<-srvDone
		}
	}()
	args := []string{"ip", "netns", "exec", client.Name, "iperf3", "-c", addr, "-t", fmt.Sprint(seconds),
		"-P", fmt.Sprint(streams), "-J", "--connect-timeout", "2000"}
	if reverse {
		args = append(args, "-R")
	}
	var out []byte
	var err error
	var r iperfResult
	for try := 0; try < 100; try++ { // until the server listens
		out, err = exec.Command(args[0], args[1:]...).Output()
		r = iperfResult{}
		if jerr := json.Unmarshal(out, &r); jerr != nil {
			t.Fatalf("iperf3: %v %v\n%s", err, jerr, out)
		}
		if !strings.Contains(r.Error, "Connection refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || r.Error != "" {
		t.Fatalf("iperf3: %v %s\n%s", err, r.Error, out)
	}
	return r
}

func TestGatewayTCPTwoWorkers(t *testing.T) {
	requireTools(t, "iperf3")
	tp := newTopo(t, 2)
	tp.warm(t)
	a, b := tp.startGateways(t, false, false, 2, "", "")
	for _, reverse := range []bool{false, true} {
		r := iperf(t, tp.hostB, tp.hostA, "203.0.113.20", 2, 8, reverse)
		t.Logf("iperf3 reverse=%v: %.0f Mbit/s received, %d retransmits", reverse, r.End.SumReceived.BitsPerSec/1e6, r.End.SumSent.Retransmits)
		if r.End.SumReceived.Bytes < 1e6 {
			t.Errorf("iperf3 reverse=%v: only %.0f bytes received", reverse, r.End.SumReceived.Bytes)
		}
	}
	cores := tp.perCore(t, a)
	if len(cores) != 2 {
		t.Fatalf("gwA runs %d workers, want 2", len(cores))
	}
	for i, c := range cores {
		if c["encrypted_packets"] == 0 {
			t.Errorf("gwA worker %d encrypted nothing: traffic did not spread over the queues: %v", i, c)
		}
	}
	ca, cb := tp.counters(t, a), tp.counters(t, b)
	for name, c := range map[string]map[string]uint64{"gwA": ca, "gwB": cb} {
		for k, v := range c {
			if strings.HasPrefix(k, "drop_") && v > 0 {
				t.Logf("%s %s %d", name, k, v)
			}
		}
	}
	if ca["drop_replay"]+cb["drop_replay"] != 0 || ca["drop_auth_failed"]+cb["drop_auth_failed"] != 0 {
		t.Errorf("two workers sharing an SA caused replay or ICV drops: %v %v", ca, cb)
	}
	balanced(t, "gwA", ca)
	balanced(t, "gwB", cb)
}

const ikeTemplate = `
[dataplane]
protected = "prot"
unprotected = "unprot"
queues = 1
default-policy = "discard"

[control]
socket = "%s"

[[connection]]
name = "peer"
local = "%s"
remote = "%s"
local-id = "@%s.example"
remote-id = "@%s.example"
psk = "espx test key, not a secret"
ike = "aes128gcm16-prfsha256-x25519"
esp = "aes128gcm16"
local-ts = ["%s", "%s"]
remote-ts = ["%s", "%s"]
start-action = "trap"
`

// The first ping from hostA to hostB raises an acquire at gwA, which
// negotiates the tunnel with gwB over IKEv2, and the ping, held
// meanwhile, is answered.
//
// No neighbour is resolved beforehand either: the gateways ask their
// kernels and hold the packets meanwhile.
func TestGatewayOnDemandIKE(t *testing.T) {
	for _, childless := range []bool{false, true} {
		name := "with child"
		if childless {
			name = "childless"
		}
		t.Run(name, func(t *testing.T) { testOnDemandIKE(t, childless) })
	}
}

// testOnDemandIKE is TestGatewayOnDemandIKE with the IKE SA and its child
// SA made in one exchange or, childless (RFC 6023), in two.
func testOnDemandIKE(t *testing.T, childless bool) {
	tp := newTopo(t, 1)
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	confA := fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64")
	if childless {
		confA += "childless = true\n"
	}
	a := tp.startDaemon(t, tp.gwA, "gwA", confA, sa)
	b := tp.startDaemon(t, tp.gwB, "gwB", fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64"), sb)
	capture := tp.capture(t)
	start := time.Now()
	out, _ := netnstest.RunErr("ip", "netns", "exec", tp.hostA.Name, "ping", "-n", "-c", "1", "-W", "2", "203.0.113.20")
	took := time.Since(start)
	if !strings.Contains(out, "1 received") {
		t.Fatalf("the first ping was not answered:\n%s", out)
	}
	t.Logf("first ping answered after %v", took)
	if took > time.Second {
		t.Errorf("tunnel up and first ping answered after %v, want under 1 s", took)
	}
	if n := ping(t, tp.hostB, "2001:db8:1::10", 5, 56); n != 5 {
		t.Errorf("IPv6 through the negotiated SA: %d of 5 replies", n)
	}
	tp.checkNegotiatedKeys(t, a, capture())
	ca, cb := tp.counters(t, a), tp.counters(t, b)
	if ca["acquires"] != 1 || ca["held_sent"] != 1 || cb["acquires"] != 0 {
		t.Errorf("gwA: %d acquires, %d held packets sent; gwB: %d acquires; want 1, 1, 0", ca["acquires"], ca["held_sent"], cb["acquires"])
	}
	for name, d := range map[string]*daemon{"gwA": a, "gwB": b} {
		out, err := tp.ctlErr(d, "sas")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			SAs []struct {
				Dir     string `json:"dir"`
				Packets uint64 `json:"packets"`
			} `json:"sas"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if len(r.SAs) != 2 || r.SAs[0].Packets == 0 || r.SAs[1].Packets == 0 {
			t.Errorf("%s SAs: %s", name, out)
		}
	}
	balanced(t, "gwA", ca)
	balanced(t, "gwB", cb)

	// The operator's commands.
	ikeOut, err := exec.Command(tp.ctl, "-socket", a.socket, "ike").CombinedOutput()
	if out := string(ikeOut); err != nil || !strings.Contains(out, "peer: ESTABLISHED, initiator") || !strings.Contains(string(out), "198.51.100.0/24 2001:db8:1::/64 === 203.0.113.0/24 2001:db8:2::/64") {
		t.Errorf("espxctl ike: %v\n%s", err, ikeOut)
	}
	before := tp.sasOf(t, a)
	spi := strings.Fields(before[0])[1]
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "rekey", spi).CombinedOutput(); err != nil {
		t.Fatalf("espxctl rekey: %v %s", err, out)
	}
	waitFor(t, "rekey by espxctl", func() bool {
		now := tp.sasOf(t, a)
		return len(now) == 2 && !slices.Contains(now, before[0]) && !slices.Contains(now, before[1])
	})
	// Reauthentication, make-before-break, under traffic: a new IKE SA
	// and child SA, the old ones gone, no ping lost.
	ikeBefore, _ := exec.Command(tp.ctl, "-socket", a.socket, "-json", "ike").CombinedOutput()
	done := make(chan int, 1)
	go func() { done <- ping(t, tp.hostA, "203.0.113.20", 40, 56) }()
	time.Sleep(500 * time.Millisecond)
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "reauth", "peer").CombinedOutput(); err != nil {
		t.Fatalf("espxctl reauth: %v %s", err, out)
	}
	if n := <-done; n != 40 {
		t.Errorf("%d of 40 pings answered across a reauthentication", n)
	}
	waitFor(t, "reauthentication", func() bool {
		out, _ := exec.Command(tp.ctl, "-socket", a.socket, "-json", "ike").CombinedOutput()
		return strings.Count(string(out), `"state":"ESTABLISHED"`) == 1 && string(out) != string(ikeBefore) &&
			len(tp.sasOf(t, a)) == 2 && len(tp.sasOf(t, b)) == 2
	})
	var ikeOld, ikeNew api.Response
	json.Unmarshal(ikeBefore, &ikeOld)
	out2, _ := exec.Command(tp.ctl, "-socket", a.socket, "-json", "ike").CombinedOutput()
	json.Unmarshal(out2, &ikeNew)
	if len(ikeOld.IKE) != 1 || len(ikeNew.IKE) != 1 || ikeOld.IKE[0].SPIi == ikeNew.IKE[0].SPIi {
		t.Errorf("IKE SA before %+v, after %+v: want one, new", ikeOld.IKE, ikeNew.IKE)
	}

	// A child SA deleted on its own: the IKE SA stays, and the next
	// packet makes a new child SA in it.
	rekeyed := tp.sasOf(t, a)
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "delete", strings.Fields(rekeyed[0])[1]).CombinedOutput(); err != nil {
		t.Fatalf("espxctl delete: %v %s", err, out)
	}
	waitFor(t, "child delete by espxctl", func() bool { return len(tp.sasOf(t, a))+len(tp.sasOf(t, b)) == 0 })
	if n := ping(t, tp.hostA, "203.0.113.20", 1, 56); n != 1 {
		t.Fatalf("no new child SA in the IKE SA:\n%s", a.log.String())
	}
	if !strings.Contains(a.log.String(), "creating a child SA") || strings.Count(a.log.String(), "msg=initiating") != 1 {
		t.Errorf("the new child did not come in the old IKE SA:\n%s", a.log.String())
	}
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "flush", "peer").CombinedOutput(); err != nil {
		t.Fatalf("espxctl flush: %v %s", err, out)
	}
	waitFor(t, "flush by espxctl", func() bool { return len(tp.sasOf(t, a))+len(tp.sasOf(t, b)) == 0 })
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "initiate", "peer").CombinedOutput(); err != nil {
		t.Fatalf("espxctl initiate: %v %s", err, out)
	}
	waitFor(t, "initiate by espxctl", func() bool { return len(tp.sasOf(t, a)) == 2 && len(tp.sasOf(t, b)) == 2 })
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "initiate", "nobody").CombinedOutput(); err == nil {
		t.Errorf("espxctl initiate of an unknown connection succeeded: %s", out)
	}
}

// checkNegotiatedKeys decrypts the ESP of pcap with scapy and the keys
// that `espxctl -keys sas` shows for d's SAs: the keys an operator reads
// there are the ones on the wire. Without -keys, no key is shown.
func (tp *topo) checkNegotiatedKeys(t *testing.T, d *daemon, pcap string) {
	t.Helper()
	plain, err := tp.ctlErr(d, "sas")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tp.ctl, "-socket", d.socket, "-json", "-keys", "sas").CombinedOutput()
	if err != nil {
		t.Fatalf("espxctl -keys sas: %v\n%s", err, out)
	}
	var r api.Response
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, s := range r.SAs {
		if len(s.EncrKey) != 40 || strings.Contains(plain, s.EncrKey) {
			t.Fatalf("SA %s: key %d hex digits, or shown without -keys:\n%s", s.SPI, len(s.EncrKey), plain)
		}
		keys[fmt.Sprintf("%x", mustHex(t, s.SPI))] = s.EncrKey
	}
	if !strings.Contains(d.log.String(), "SA keys disclosed on the control socket") {
		t.Error("the disclosure of keys was not logged")
	}
	js, _ := json.Marshal(keys)
	path := filepath.Join(tp.dir, "negotiated.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		t.Fatal(err)
	}
	dec, err := exec.Command(python, "testdata/esp_pcap.py", "decrypt", pcap, path).CombinedOutput()
	if err != nil {
		t.Fatalf("scapy with the keys espxctl shows: %v\n%s", err, dec)
	}
	if n := strings.Count(string(dec), `"icmp_type"`); n < 12 {
		rd, _ := exec.Command("tcpdump", "-n", "-r", pcap).CombinedOutput()
		t.Errorf("%d ICMP messages decrypted from the wire, want at least 12:\n%s\n%s", n, dec, rd)
	}
}

func mustHex(t *testing.T, s string) uint32 {
	t.Helper()
	var v uint32
	if _, err := fmt.Sscanf(s, "0x%x", &v); err != nil {
		t.Fatalf("SPI %q: %v", s, err)
	}
	return v
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sasOf lists a daemon's SAs as "dir spi".
func (tp *topo) sasOf(t *testing.T, d *daemon) []string {
	t.Helper()
	out, err := tp.ctlErr(d, "sas")
	if err != nil {
		t.Fatalf("espxctl sas: %v: %s", err, out)
	}
	var r struct {
		SAs []struct {
			SPI string `json:"spi"`
			Dir string `json:"dir"`
		} `json:"sas"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	var l []string
	for _, s := range r.SAs {
		l = append(l, s.Dir+" "+s.SPI)
	}
	return l
}

// With idle-keep-ike, an idle tunnel loses its child SA but keeps its IKE
// SA, and the next packet makes a child SA in it.
func TestGatewayIdleKeepIKE(t *testing.T) {
	tp := newTopo(t, 1)
	tp.warm(t)
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	a := tp.startDaemon(t, tp.gwA, "gwA", fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64")+"inactivity = \"2s\"\nidle-keep-ike = true\n", sa)
	b := tp.startDaemon(t, tp.gwB, "gwB", fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64"), sb)
	if n := ping(t, tp.hostA, "203.0.113.20", 1, 56); n != 1 {
		t.Fatal("the tunnel did not come up")
	}
	waitFor(t, "idle close of the child SA", func() bool { return len(tp.sasOf(t, a))+len(tp.sasOf(t, b)) == 0 })
	out, _ := exec.Command(tp.ctl, "-socket", a.socket, "ike").CombinedOutput()
	if !strings.Contains(string(out), "ESTABLISHED") {
		t.Fatalf("the IKE SA went with the child SA:\n%s", out)
	}
	if n := ping(t, tp.hostA, "203.0.113.20", 2, 56); n != 2 {
		t.Fatalf("after the idle close: %d of 2", n)
	}
	if !strings.Contains(a.log.String(), "creating a child SA") || strings.Count(a.log.String(), "msg=initiating") != 1 {
		t.Errorf("no child SA in the kept IKE SA:\n%s", a.log.String())
	}
}

// A tunnel rekeys its child and IKE SAs on their lifetimes without losing
// a packet of the traffic through it, closes when idle, and comes back
// with the next packet.
func TestGatewayRekeyAndIdleClose(t *testing.T) {
	tp := newTopo(t, 1)
	tp.warm(t)
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	lifeA := "rekey-time = \"2s\"\nlife-time = \"10s\"\nrand-time = \"0s\"\nike-rekey-time = \"3s\"\ninactivity = \"3s\"\n"
	lifeB := "rekey-time = \"60s\"\ninactivity = \"3s\"\n"
	a := tp.startDaemon(t, tp.gwA, "gwA", fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64")+lifeA, sa)
	b := tp.startDaemon(t, tp.gwB, "gwB", fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64")+lifeB, sb)
	if n := ping(t, tp.hostA, "203.0.113.20", 1, 56); n != 1 {
		t.Fatal("the tunnel did not come up")
	}
	first := tp.sasOf(t, a)
	// 4.5 s of pings, 20 a second: two rekeys at gwA meanwhile.
	if n := ping(t, tp.hostA, "203.0.113.20", 90, 56); n != 90 {
		t.Errorf("%d of 90 pings answered across rekeys", n)
	}
	now := tp.sasOf(t, a)
	if len(now) != 2 || slices.Contains(now, first[0]) || slices.Contains(now, first[1]) {
		t.Errorf("SAs before %v, after %v: want two new ones", first, now)
	}
	if n := strings.Count(a.log.String(), "rekeying child SA"); n < 2 {
		t.Errorf("gwA rekeyed %d times in 4.5 s with rekey-time 2s", n)
	}
	if !strings.Contains(a.log.String(), "IKE SA rekeyed") || !strings.Contains(b.log.String(), "IKE SA rekeyed by the peer") {
		t.Errorf("no IKE SA rekey in 4.5 s with ike-rekey-time 3s")
	}
	// Idle: both gateways close the tunnel within a second or so of the
	// inactivity time.
	deadline := time.Now().Add(8 * time.Second)
	for len(tp.sasOf(t, a))+len(tp.sasOf(t, b)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tunnel still up after 8 s idle: gwA %v gwB %v", tp.sasOf(t, a), tp.sasOf(t, b))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(a.log.String(), "closing idle tunnel") && !strings.Contains(b.log.String(), "closing idle tunnel") {
		t.Error("no gateway logged an idle close")
	}
	// The trap is still there: the next packet brings the tunnel back.
	if n := ping(t, tp.hostA, "203.0.113.20", 1, 56); n != 1 {
		t.Fatal("the tunnel did not come back after the idle close")
	}
	balanced(t, "gwA", tp.counters(t, a))
	balanced(t, "gwB", tp.counters(t, b))
}

// stop ends the daemon (by its PID) and waits for it.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("espxd did not stop on SIGTERM")
	}
}

// Dead peer detection: when gwB goes away, gwA notices within dpd-delay
// plus the retransmissions, clears the tunnel, and brings it back once
// gwB is there again.
func TestGatewayDPD(t *testing.T) {
	for _, action := range []string{"restart", "trap"} {
		t.Run(action, func(t *testing.T) { testDPD(t, action) })
	}
}

// testDPD: gwA notices gwB's death and applies dpd-action: restart
// negotiates again at once (and keeps trying until gwB is back); trap
// leaves the trap policies and waits for traffic.
func testDPD(t *testing.T, action string) {
	tp := newTopo(t, 1)
	tp.warm(t)
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	confA := fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64") +
		"dpd-delay = \"1s\"\nretransmit-tries = 1\nretransmit-timeout = \"500ms\"\nretransmit-base = 1.0\n" +
		"dpd-action = \"" + action + "\"\n"
	confB := fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64")
	a := tp.startDaemon(t, tp.gwA, "gwA", confA, sa)
	b := tp.startDaemon(t, tp.gwB, "gwB", confB, sb)
	if n := ping(t, tp.hostA, "203.0.113.20", 1, 56); n != 1 {
		t.Fatal("the tunnel did not come up")
	}
	// Quiet but alive: liveness checks are answered, the tunnel stays.
	time.Sleep(2500 * time.Millisecond)
	if len(tp.sasOf(t, a)) != 2 || strings.Contains(a.log.String(), "peer dead") {
		t.Fatalf("tunnel to a live but quiet peer went: %v\n%s", tp.sasOf(t, a), a.log.String())
	}
	b.stop(t)
	deadline := time.Now().Add(6 * time.Second)
	for !strings.Contains(a.log.String(), "peer dead") {
		if time.Now().After(deadline) {
			t.Fatalf("gwA did not notice gwB had gone:\n%s", a.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l := tp.sasOf(t, a); len(l) != 0 {
		t.Fatalf("SAs with a dead peer still installed: %v", l)
	}
	// restart tries again at once; trap waits for a packet.
	time.Sleep(1500 * time.Millisecond)
	initiations := strings.Count(a.log.String(), "msg=initiating")
	if action == "restart" && initiations < 2 || action == "trap" && initiations != 1 {
		t.Fatalf("dpd-action %s: %d negotiations started in all:\n%s", action, initiations, a.log.String())
	}
	acquires := tp.counters(t, a)["acquires"]
	b = tp.startDaemon(t, tp.gwB, "gwB2", confB, sb)
	deadline = time.Now().Add(10 * time.Second)
	for ping(t, tp.hostA, "203.0.113.20", 1, 56) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("tunnel not back after gwB returned:\n%s", a.log.String())
		}
	}
	if n := tp.counters(t, a)["acquires"]; action == "trap" && n <= acquires {
		t.Errorf("dpd-action trap: the tunnel came back without an acquire (%d before, %d after)", acquires, n)
	}
	_ = b
}

// espx against strongSwan, gateway to gateway: espxd in gwA, charon with
// kernel-libipsec (which always encapsulates ESP in UDP) in gwB, hosts
// behind both. Traffic both ways, tunnels started by either side, child
// SA rekeys by either side under traffic without loss, a delete by
// strongSwan, and dead peer detection both ways.
func TestGatewayStrongSwanPeer(t *testing.T) {
	sswantest.Require(t)
	tp := newTopo(t, 1)
	// strongSwan's ESP is the kernel's forwarding into its TUN device.
	netnstest.Run(t, "ip", "netns", "exec", tp.gwB.Name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	tp.warm(t)
	const psk = "espx and strongSwan, a shared key"
	sa := filepath.Join(tp.dir, "a.sock")
	conf := fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64")
	conf = strings.Replace(conf, `psk = "espx test key, not a secret"`, `psk = "`+psk+`"`, 1)
	conf = strings.Replace(conf, `local-ts = ["198.51.100.0/24", "2001:db8:1::/64"]`, `local-ts = ["198.51.100.0/24"]`, 1)
	conf = strings.Replace(conf, `remote-ts = ["203.0.113.0/24", "2001:db8:2::/64"]`, `remote-ts = ["203.0.113.0/24"]`, 1)
	conf += "dpd-delay = \"1s\"\ndpd-action = \"clear\"\nretransmit-tries = 1\nretransmit-timeout = \"500ms\"\nretransmit-base = 1.0\n"
	a := tp.startDaemon(t, tp.gwA, "gwA", conf, sa)
	ch := sswantest.Start(t, tp.gwB, fmt.Sprintf(`connections {
  espx {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = aes128gcm16-prfsha256-x25519
    dpd_delay = 1s
    local {
      auth = psk
      id = gwB.example
    }
    remote {
      auth = psk
      id = gwA.example
    }
    children {
      espx {
        mode = tunnel
        local_ts = 203.0.113.0/24
        remote_ts = 198.51.100.0/24
        esp_proposals = aes128gcm16
        start_action = trap
      }
    }
  }
}
secrets {
  ike-espx {
    id-local = gwB.example
    id-remote = gwA.example
    secret = "%s"
  }
}
`, psk), sswantest.Options{InstallRoutes: true})

	// espx starts the tunnel on the first packet.
	if n := ping(t, tp.hostA, "203.0.113.20", 5, 56); n != 5 {
		t.Fatalf("hostA -> hostB through espx and strongSwan: %d of 5\n%s\n%s", n, a.log.String(), ch.Swanctl(t, "--list-sas"))
	}
	sIn, sOut, ok := ch.ChildSPIs(t)
	ours := tp.sasOf(t, a)
	if !ok || !slices.Contains(ours, fmt.Sprintf("in %#08x", sOut)) || !slices.Contains(ours, fmt.Sprintf("out %#08x", sIn)) {
		t.Fatalf("strongSwan's child %08x/%08x, espx's %v", sIn, sOut, ours)
	}
	if out, _ := tp.ctlErr(a, "sas"); !strings.Contains(out, `"encap":true`) {
		t.Errorf("espx does not encapsulate towards libipsec: %s", out)
	}

	// Rekeys by both sides, child and IKE SA, while hostA pings hostB 20
	// times a second.
	done := make(chan int, 1)
	go func() { done <- ping(t, tp.hostA, "203.0.113.20", 100, 56) }()
	time.Sleep(time.Second)
	ch.Swanctl(t, "--rekey", "--child", "espx")
	time.Sleep(1500 * time.Millisecond)
	ch.Swanctl(t, "--rekey", "--ike", "espx")
	time.Sleep(time.Second)
	now := tp.sasOf(t, a)
	if len(now) == 0 {
		t.Fatal("no SAs after strongSwan's rekey")
	}
	if out, err := exec.Command(tp.ctl, "-socket", a.socket, "rekey", strings.Fields(now[0])[1]).CombinedOutput(); err != nil {
		t.Fatalf("espxctl rekey: %v %s", err, out)
	}
	if n := <-done; n != 100 {
		t.Errorf("%d of 100 pings answered across child rekeys by strongSwan and espx and an IKE rekey by strongSwan", n)
	}
	if !strings.Contains(a.log.String(), "IKE SA rekeyed by the peer") {
		t.Error("strongSwan's IKE SA rekey did not happen")
	}
	if strings.Count(a.log.String(), "child SA installed\" spi") < 6 {
		t.Errorf("not two rekeys at gwA:\n%s", a.log.String())
	}

	// strongSwan deletes the IKE SA, then starts a new one itself, espx
	// answering, and traffic flows from its side.
	ch.Swanctl(t, "--terminate", "--ike", "espx", "--timeout", "10")
	waitFor(t, "delete by strongSwan", func() bool { return len(tp.sasOf(t, a)) == 0 })
	ch.Swanctl(t, "--initiate", "--child", "espx", "--timeout", "10")
	if n := ping(t, tp.hostB, "198.51.100.10", 5, 56); n != 5 {
		t.Errorf("hostB -> hostA with strongSwan the initiator: %d of 5\n%s", n, ch.Swanctl(t, "--list-sas"))
	}
	if c := tp.counters(t, a); c["acquires"] != 1 {
		t.Errorf("gwA raised %d acquires, want only the first", c["acquires"])
	}
	balanced(t, "gwA", tp.counters(t, a))

	// Dead peer detection both ways: quiet for a while, each side's
	// liveness checks are answered and the tunnel stays; then strongSwan
	// dies, and espx notices.
	time.Sleep(3 * time.Second)
	if !strings.Contains(ch.Swanctl(t, "--list-sas"), "ESTABLISHED") || len(tp.sasOf(t, a)) != 2 || strings.Contains(a.log.String(), "peer dead") {
		t.Fatalf("a quiet tunnel did not survive DPD:\n%s\n%s", ch.Swanctl(t, "--list-sas"), a.log.String())
	}
	ch.Kill()
	waitFor(t, "espx noticing strongSwan's death", func() bool {
		return strings.Contains(a.log.String(), "peer dead") && len(tp.sasOf(t, a)) == 0
	})
	// dpd-action clear: nothing is negotiated again on its own.
	time.Sleep(time.Second)
	if strings.Contains(a.log.String(), "dpd restart") {
		t.Error("dpd-action clear restarted the tunnel")
	}
}

// espx to espx over IKEv2 with ESN and AES-CBC with HMAC-SHA2, the 4096
// replay window and IPv6 inside; and a negotiation that fails (the peer is
// not there) is not retried before the acquire timeout.
func TestGatewayIKEESNAndFailedAcquire(t *testing.T) {
	tp := newTopo(t, 1)
	tp.warm(t)
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	esn := func(c string) string {
		return strings.Replace(c, `esp = "aes128gcm16"`, `esp = "aes256-sha256-esn"`, 1) +
			"retransmit-tries = 1\nretransmit-timeout = \"300ms\"\nretransmit-base = 1.0\n"
	}
	confA := esn(fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64"))
	confA = strings.Replace(confA, "[[connection]]", "[acquire]\ntimeout = \"3s\"\n\n[[connection]]", 1)
	a := tp.startDaemon(t, tp.gwA, "gwA", confA, sa)
	// gwB is not running yet: the negotiation fails, and the pings that
	// follow within the acquire timeout raise no new acquire.
	ping(t, tp.hostA, "203.0.113.20", 10, 56)
	if c := tp.counters(t, a); c["acquires"] != 1 || c["acquires_suppressed"] != 9 {
		t.Fatalf("with the peer away: %d acquires, %d suppressed; want 1, 9", c["acquires"], c["acquires_suppressed"])
	}
	waitFor(t, "the failed negotiation", func() bool { return strings.Contains(a.log.String(), "IKE SA failed") })
	b := tp.startDaemon(t, tp.gwB, "gwB", esn(fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64")), sb)
	// Once the acquire has timed out, the next packet tries again.
	time.Sleep(3 * time.Second)
	if n := ping(t, tp.hostA, "2001:db8:2::20", 10, 56); n != 10 {
		t.Fatalf("IPv6 through the ESN tunnel: %d of 10\n%s", n, a.log.String())
	}
	out, err := tp.ctlErr(a, "sas")
	if err != nil || strings.Count(out, `"esn":true`) != 2 || strings.Count(out, `"transform":"aes-cbc-256/hmac-sha2-256-128"`) != 2 || !strings.Contains(out, `"replay_window":4096`) {
		t.Errorf("gwA SAs: %v %s", err, out)
	}
	if c := tp.counters(t, a); c["acquires"] != 2 {
		t.Errorf("%d acquires, want 2: one per acquire timeout", c["acquires"])
	}
	balanced(t, "gwA", tp.counters(t, a))
	balanced(t, "gwB", tp.counters(t, b))
}

// start-action start brings the tunnel up without traffic; when the peer
// closes it, close-action start brings it back at once and close-action
// trap on the next packet.
func TestGatewayStartAndCloseAction(t *testing.T) {
	for _, action := range []string{"start", "trap"} {
		t.Run(action, func(t *testing.T) {
			tp := newTopo(t, 1)
			tp.warm(t)
			sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
			confA := strings.Replace(fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
				"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/24", "2001:db8:2::/64"),
				`start-action = "trap"`, `start-action = "start"`+"\nclose-action = \""+action+"\"", 1)
			b := tp.startDaemon(t, tp.gwB, "gwB", fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
				"203.0.113.0/24", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64"), sb)
			a := tp.startDaemon(t, tp.gwA, "gwA", confA, sa)
			waitFor(t, "start-action start", func() bool { return len(tp.sasOf(t, a)) == 2 && len(tp.sasOf(t, b)) == 2 })
			first := tp.sasOf(t, a)
			if out, err := exec.Command(tp.ctl, "-socket", b.socket, "flush", "peer").CombinedOutput(); err != nil {
				t.Fatalf("espxctl flush at gwB: %v %s", err, out)
			}
			waitFor(t, "the peer's close", func() bool { return strings.Contains(a.log.String(), "peer closed the tunnel") })
			if action == "start" {
				waitFor(t, "close-action start", func() bool {
					now := tp.sasOf(t, a)
					return len(now) == 2 && !slices.Contains(now, first[0])
				})
			} else {
				time.Sleep(time.Second)
				if l := tp.sasOf(t, a); len(l) != 0 {
					t.Fatalf("close-action trap brought the tunnel up without traffic: %v", l)
				}
				if n := ping(t, tp.hostA, "203.0.113.20", 3, 56); n != 3 {
					t.Fatalf("close-action trap: %d of 3 pings", n)
				}
			}
			if n := ping(t, tp.hostB, "198.51.100.10", 3, 56); n != 3 {
				t.Errorf("after close-action %s: %d of 3 pings from hostB", action, n)
			}
		})
	}
}

// Two connections between the same gateways, one per half of hostB's
// net, with their own proposals: gwA negotiates each in its own IKE SA,
// and gwB, responding, gives each child SA the connection whose selectors
// it fits (peers it cannot tell apart by address).
func TestGatewayTwoConnectionsOnePeer(t *testing.T) {
	tp := newTopo(t, 1)
	tp.hostB.IP(t, "addr", "add", "203.0.113.200/24", "dev", "eth0", "nodad")
	second := `
[[connection]]
name = "db"
local = "%s"
remote = "%s"
local-id = "@%s.example"
remote-id = "@%s.example"
psk = "espx test key, not a secret"
ike = "aes128gcm16-prfsha256-x25519"
esp = "aes256gcm16"
local-ts = ["%s"]
remote-ts = ["%s"]
start-action = "trap"
`
	sa, sb := filepath.Join(tp.dir, "a.sock"), filepath.Join(tp.dir, "b.sock")
	confA := fmt.Sprintf(ikeTemplate, sa, "192.0.2.1", "192.0.2.2", "gwA", "gwB",
		"198.51.100.0/24", "2001:db8:1::/64", "203.0.113.0/25", "2001:db8:2::/64") +
		fmt.Sprintf(second, "192.0.2.1", "192.0.2.2", "gwA", "gwB", "198.51.100.0/24", "203.0.113.128/25")
	confB := fmt.Sprintf(ikeTemplate, sb, "192.0.2.2", "192.0.2.1", "gwB", "gwA",
		"203.0.113.0/25", "2001:db8:2::/64", "198.51.100.0/24", "2001:db8:1::/64") +
		fmt.Sprintf(second, "192.0.2.2", "192.0.2.1", "gwB", "gwA", "203.0.113.128/25", "198.51.100.0/24") +
		"\n[metrics]\nlisten = \"127.0.0.1:9560\"\n"
	a := tp.startDaemon(t, tp.gwA, "gwA", confA, sa)
	b := tp.startDaemon(t, tp.gwB, "gwB", confB, sb)
	for _, dst := range []string{"203.0.113.20", "203.0.113.200"} {
		if n := ping(t, tp.hostA, dst, 3, 56); n != 3 {
			t.Fatalf("%s: %d of 3 pings answered\ngwA:\n%s\ngwB:\n%s", dst, n, a.log.String(), b.log.String())
		}
	}
	r, out := tp.ask(t, b, "ike")
	children := map[string]api.Child{}
	for _, ike := range r.IKE {
		for _, c := range ike.Children {
			children[c.Name] = c
		}
	}
	web, db := children["peer"], children["db"]
	if len(r.IKE) != 2 || len(children) != 2 || web.InPackets == 0 || db.InPackets == 0 ||
		!strings.HasPrefix(web.Proposal, "aes128gcm16") || !strings.HasPrefix(db.Proposal, "aes256gcm16") ||
		!slices.Equal(db.LocalTS, []string{"203.0.113.128/25"}) {
		t.Errorf("gwB's IKE SAs:\n%s", out)
	}
	if strings.Contains(a.log.String(), "TS_UNACCEPTABLE") || strings.Contains(a.log.String(), "refused") {
		t.Errorf("a child SA was refused:\n%s", a.log.String())
	}
	// espxctl sas names each SA's connection.
	sr, out := tp.ask(t, b, "sas")
	conns := map[string]int{}
	for _, sa := range sr.SAs {
		conns[sa.Conn]++
	}
	if len(sr.SAs) != 4 || conns["peer"] != 2 || conns["db"] != 2 {
		t.Errorf("gwB's SAs by connection %v:\n%s", conns, out)
	}
	// The control plane's Prometheus series (summed over labels).
	m := scrape(t, tp.gwB)
	for name, want := range map[string]float64{
		"espx_ike_sas": 2, "espx_ike_child_sas": 2, "espx_ike_sas_established_total": 2,
		"espx_ike_child_sas_installed_total": 2, "espx_ike_refusals_sent_total": 0, "espx_ike_sas_failed_total": 0,
	} {
		if m[name] != want {
			t.Errorf("gwB metrics: %s = %v, want %v", name, m[name], want)
		}
	}
	balanced(t, "gwA", tp.counters(t, a))
	balanced(t, "gwB", tp.counters(t, b))
}
