package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// gateways is a running gateway pair, whichever the implementation.
type gateways interface {
	// pids are the daemons of gwA and gwB, for their CPU time.
	pids() [2]int
	// encrypted is how many bytes the two gateways together have
	// encrypted so far: the proof that the traffic went through the tunnel.
	encrypted(ctx context.Context) (uint64, error)
	stop() error
}

// espxConf is gwA's or gwB's static configuration: one worker (one queue
// per veth), an AES-GCM-128 SA each way in UDP encapsulation, as
// libipsec's, and the protect policies. No metrics listener.
const espxConf = `
[dataplane]
protected = "prot"
unprotected = "unprot"
queues = 1
default-policy = "discard"

[control]
socket = "{{.Socket}}"

[metrics]
listen = ""

[[policy]]
dir = "out"
local = "{{.LocalNet}}"
remote = "{{.RemoteNet}}"
action = "protect"
reqid = 1

[[policy]]
dir = "fwd"
local = "{{.LocalNet}}"
remote = "{{.RemoteNet}}"
action = "protect"
reqid = 1

[[sa]]
dir = "out"
spi = "{{.OutSPI}}"
reqid = 1
src = "{{.Local}}"
dst = "{{.Remote}}"
encryption = "aes-gcm-16"
key = "{{.OutKey}}"
encap = true

[[sa]]
dir = "in"
spi = "{{.InSPI}}"
reqid = 1
src = "{{.Remote}}"
dst = "{{.Local}}"
encryption = "aes-gcm-16"
key = "{{.InKey}}"
encap = true
`

type espxParams struct {
	Socket              string
	Local, Remote       string
	LocalNet, RemoteNet string
	OutSPI, InSPI       string
	OutKey, InKey       string
}

// Benchmark keys: 16 bytes of AES key and the 4-byte salt, each way.
const (
	keyAB = "0x00112233445566778899aabbccddeeff01020304"
	keyBA = "0xffeeddccbbaa99887766554433221100a0b0c0d0"
)

type espxDaemon struct {
	name, ns string
	proc     *proc
	log      *logBuffer
	socket   string
}

type espxPair struct {
	b    *bench
	a, z *espxDaemon
	tp   *topo
}

func (b *bench) startEspx(ctx context.Context, tp *topo) (gateways, error) {
	pa := espxParams{
		Local: gwAWire, Remote: gwBWire, LocalNet: netA, RemoteNet: netB,
		OutSPI: "0x1001", InSPI: "0x2001", OutKey: keyAB, InKey: keyBA,
	}
	pb := espxParams{
		Local: gwBWire, Remote: gwAWire, LocalNet: netB, RemoteNet: netA,
		OutSPI: "0x2001", InSPI: "0x1001", OutKey: keyBA, InKey: keyAB,
	}
	tmpl := template.Must(template.New("espxd").Parse(espxConf))
	p := &espxPair{b: b, tp: tp}
	for i, g := range []struct {
		ns, name string
		par      espxParams
		dst      **espxDaemon
	}{{tp.gwA, "gwA", pa, &p.a}, {tp.gwB, "gwB", pb, &p.z}} {
		g.par.Socket = filepath.Join(b.dir, fmt.Sprintf("%s-%d.sock", g.ns, i))
		var conf bytes.Buffer
		if err := tmpl.Execute(&conf, g.par); err != nil {
			return nil, err
		}
		path := filepath.Join(b.dir, g.ns+".toml")
		if err := os.WriteFile(path, conf.Bytes(), 0o600); err != nil {
			return nil, err
		}
		d := &espxDaemon{name: g.name, ns: g.ns, log: new(logBuffer), socket: g.par.Socket}
		// ip netns exec execs espxd, so the PID is espxd's own.
		pr, err := b.background([]string{"ip", "netns", "exec", g.ns, b.espxd, "-config", path}, d.log)
		if err != nil {
			return nil, err
		}
		d.proc = pr
		*g.dst = d
		b.AtExit(func() {
			if err := d.proc.stop(10 * time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "gwbench: espxd %s: %v\n%s", d.name, err, d.log)
			}
		})
		if err := b.waitEspx(ctx, d); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// waitEspx waits until the daemon's control socket answers.
func (b *bench) waitEspx(ctx context.Context, d *espxDaemon) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := b.Output(ctx, 5*time.Second, b.espxctl, "-socket", d.socket, "sas"); err == nil {
			return nil
		}
		select {
		case <-d.proc.done:
			return fmt.Errorf("espxd %s exited: %v\n%s", d.name, d.proc.err, d.log)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("espxd %s not up after 15 s:\n%s", d.name, d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *espxPair) pids() [2]int { return [2]int{p.a.proc.pid(), p.z.proc.pid()} }

func (p *espxPair) encrypted(ctx context.Context) (uint64, error) {
	var sum uint64
	for _, d := range []*espxDaemon{p.a, p.z} {
		out, err := p.b.Output(ctx, 5*time.Second, p.b.espxctl, "-socket", d.socket, "-json", "counters")
		if err != nil {
			return 0, err
		}
		var c struct {
			Cores []struct {
				Counters map[string]uint64 `json:"counters"`
			} `json:"cores"`
		}
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			return 0, fmt.Errorf("espxctl counters: %w", err)
		}
		for _, core := range c.Cores {
			sum += core.Counters["encrypted_bytes"]
		}
	}
	return sum, nil
}

// stop stops both daemons by PID and checks that they took their XDP
// programs with them (espxd attaches through bpf links).
func (p *espxPair) stop() error {
	var errs []string
	for _, d := range []*espxDaemon{p.a, p.z} {
		if err := d.proc.stop(10 * time.Second); err != nil {
			errs = append(errs, fmt.Sprintf("espxd %s: %v", d.name, err))
		}
		for _, dev := range []string{"prot", "unprot"} {
			out, _ := exec.Command("ip", "-n", d.ns, "-d", "link", "show", "dev", dev).Output()
			if strings.Contains(string(out), "prog/xdp") {
				errs = append(errs, fmt.Sprintf("XDP program still attached to %s in %s after espxd stopped", dev, d.ns))
			}
		}
	}
	if errs != nil {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
