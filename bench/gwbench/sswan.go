package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sswanPair is two charon instances (kernel-libipsec) started by the
// interop scripts, each in its own state directory under the harness's
// temporary directory.
type sswanPair struct {
	b      *bench
	tp     *topo
	states [2]string // gwA, gwB
	pid    [2]int
	down   [2]bool
}

// startSswan brings up gwB as responder and gwA as initiator of an
// aes128gcm16 CHILD_SA between the two protected networks.
func (b *bench) startSswan(ctx context.Context, tp *topo) (gateways, error) {
	b.sswanSerial++
	p := &sswanPair{b: b, tp: tp}
	up := filepath.Join(b.sswanDir, "sswan-peer-up.sh")
	for i, g := range []struct {
		ns, name, local, remote, lts, rts string
		initiate                          bool
	}{
		{tp.gwB, "gwB", gwBWire, gwAWire, netB, netA, false},
		{tp.gwA, "gwA", gwAWire, gwBWire, netA, netB, true},
	} {
		idx := 1 - i // states[0] is gwA
		state := filepath.Join(b.dir, fmt.Sprintf("sswan-%s-%d", g.name, b.sswanSerial))
		p.states[idx] = state
		// Registered before the start: the script may fail after charon
		// is up, and sswan-peer-down.sh stops it by its recorded PID.
		b.AtExit(func() { p.downOne(idx) })
		args := []string{up, "--name", g.name, "--netns", g.ns, "--state-dir", state,
			"--local-addr", g.local, "--remote-addr", g.remote,
			"--local-ts", g.lts, "--remote-ts", g.rts, "--psk", "gwbench-not-a-secret",
			"--esp-proposals", "aes128gcm16", "--ike-proposals", "aes128gcm16-prfsha256-x25519"}
		if g.initiate {
			args = append(args, "--initiate")
		}
		if _, err := b.Output(ctx, 60*time.Second, args...); err != nil {
			return nil, err
		}
		pid, err := readPID(filepath.Join(state, "charon.pid"))
		if err != nil {
			return nil, err
		}
		p.pid[idx] = pid
	}
	// The CHILD_SA must carry traffic before the measurement starts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := b.Cmd(ctx, "ip", "netns", "exec", tp.hostA, "ping", "-n", "-q", "-c", "1", "-W", "1", hostBAddr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("no ping through the strongSwan tunnel: %w", err)
		}
	}
	return p, nil
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func (p *sswanPair) pids() [2]int { return p.pid }

// encrypted sums the bytes the kernels of both gateways handed to charon
// through the TUN device: what libipsec encrypted.
func (p *sswanPair) encrypted(ctx context.Context) (uint64, error) {
	var sum uint64
	for _, ns := range []string{p.tp.gwA, p.tp.gwB} {
		out, err := p.b.Output(ctx, 5*time.Second, "ip", "-n", ns, "-j", "-s", "link", "show", "dev", "ipsec0")
		if err != nil {
			return 0, err
		}
		var links []struct {
			Stats struct {
				TX struct {
					Bytes uint64 `json:"bytes"`
				} `json:"tx"`
			} `json:"stats64"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
			return 0, fmt.Errorf("ipsec0 statistics in %s: %v %s", ns, err, out)
		}
		sum += links[0].Stats.TX.Bytes
	}
	return sum, nil
}

func (p *sswanPair) stop() error {
	var errs []string
	for i := range p.states {
		if err := p.downOne(i); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// downOne stops one charon through sswan-peer-down.sh, which signals only
// the PID it recorded after checking that it is that instance's charon,
// and removes the state directory.
func (p *sswanPair) downOne(i int) error {
	if p.down[i] || p.states[i] == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(p.states[i], ".sswan-peer")); err != nil {
		return nil // never started
	}
	p.down[i] = true
	_, err := p.b.Output(context.Background(), 30*time.Second, filepath.Join(p.b.sswanDir, "sswan-peer-down.sh"), "--state-dir", p.states[i])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwbench:", err)
	}
	return err
}
