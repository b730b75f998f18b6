package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/espx/espx/control/api"
	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/spd"
)

func startAPI(ctx context.Context, cfg *config, dp *dataplane.Dataplane, gw *dataplane.Gateway, k *ike, log *slog.Logger) error {
	path := cfg.file.Control.Socket
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// A socket left by a daemon that died is in the way; one that answers
	// belongs to a daemon that is running.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another espxd is listening", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					log.Warn("control socket", "err", err)
				}
				return
			}
			go serveAPI(c, dp, k, log)
		}
	}()
	if cfg.file.Metrics.Listen != "" {
		if err := startMetrics(ctx, cfg, dp, gw, k, log); err != nil {
			return err
		}
	}
	return nil
}

func serveAPI(c net.Conn, dp *dataplane.Dataplane, k *ike, log *slog.Logger) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	sc := bufio.NewScanner(c)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req api.Request
		var resp api.Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			switch req.Cmd {
			case "sas":
				resp.SAs = listSAs(dp, req.Keys)
				k.nameSAs(resp.SAs)
				if req.Keys {
					log.Warn("SA keys disclosed on the control socket", "sas", len(resp.SAs))
				}
			case "counters":
				resp.Cores = counters(dp)
			case "ike":
				resp.IKE = k.list()
			case "policies":
				resp.SPD, resp.Policies = listPolicies(dp)
			case "sp-hash":
				if err := setThresholds(dp, req.Arg); err != nil {
					resp.Error = err.Error()
				} else {
					resp.SPD, _ = listPolicies(dp)
					resp.Done = dp.SPD.Thresholds().String()
				}
			case "initiate", "rekey", "delete", "flush", "reauth":
				done, err := k.command(req.Cmd, req.Arg)
				if err != nil {
					resp.Error = err.Error()
				}
				resp.Done = done
			default:
				resp.Error = fmt.Sprintf("unknown command %q", req.Cmd)
			}
		}
		if enc.Encode(&resp) != nil {
			return
		}
	}
}

// listSAs describes the data plane's SAs, with their keys only when keys
// is set.
func listSAs(dp *dataplane.Dataplane, keys bool) []api.SA {
	now := time.Now()
	var out []api.SA
	for _, i := range dp.SAs() {
		a := api.SA{
			SPI: fmt.Sprintf("%#08x", i.SPI), Dir: "out", ReqID: i.ReqID, Mode: i.Mode.String(),
			Encap: i.Encap, ESN: i.ESN, Transform: transformName(i), ReplayWindow: i.ReplayWindow,
			Packets: i.Packets, Bytes: i.Bytes, Seq: i.Seq,
			AgeSeconds: int64(now.Sub(i.Added).Seconds()), IdleSeconds: -1,
			SoftSeconds: int64(i.Lifetime.SoftAdd.Seconds()), HardSeconds: int64(i.Lifetime.HardAdd.Seconds()),
			SoftBytes: i.Lifetime.SoftBytes, HardBytes: i.Lifetime.HardBytes,
			SoftPackets: i.Lifetime.SoftPackets, HardPackets: i.Lifetime.HardPackets,
			Replay: i.Replay, TooOld: i.TooOld, AuthFailed: i.AuthFailed,
		}
		if i.Encap {
			a.SrcPort, a.DstPort = i.SrcPort, i.DstPort
		}
		if i.Inbound {
			a.Dir = "in"
		} else {
			a.ReplayWindow = 0
		}
		if i.Src.IsValid() {
			a.Src, a.Dst = i.Src.String(), i.Dst.String()
		}
		if !i.LastUse.IsZero() {
			a.IdleSeconds = int64(now.Sub(i.LastUse).Seconds())
		}
		if keys {
			a.EncrKey, a.IntegKey = hex.EncodeToString(i.Transform.EncrKey), hex.EncodeToString(i.Transform.IntegKey)
		}
		out = append(out, a)
	}
	return out
}

// transformName names the SA's transform without its keys.
func transformName(i dataplane.SAInfo) string {
	for name, id := range encrNames {
		if id == i.Transform.Encr {
			bits := len(i.Transform.EncrKey) * 8
			switch name {
			case "aes-gcm-16", "aes-gmac", "chacha20-poly1305":
				bits -= 32 // the salt
			}
			s := fmt.Sprintf("%s-%d", name, bits)
			if name == "null" {
				s = name
			}
			for iname, iid := range integNames {
				if iid == i.Transform.Integ && iname != "" {
					s += "/" + iname
				}
			}
			return s
		}
	}
	return "unknown"
}

func counters(dp *dataplane.Dataplane) []api.Core {
	var out []api.Core
	for _, w := range dp.Workers() {
		s := w.C.Snapshot()
		m := map[string]uint64{
			"rx_packets_protected": s.RxPackets[0], "rx_packets_unprotected": s.RxPackets[1],
			"tx_packets_protected": s.TxPackets[0], "tx_packets_unprotected": s.TxPackets[1],
			"rx_bytes_protected": s.RxBytes[0], "rx_bytes_unprotected": s.RxBytes[1],
			"tx_bytes_protected": s.TxBytes[0], "tx_bytes_unprotected": s.TxBytes[1],
			"encrypted_packets": s.EncapPackets, "encrypted_bytes": s.EncapBytes,
			"decrypted_packets": s.DecapPackets, "decrypted_bytes": s.DecapBytes,
			"acquires": s.Acquires, "acquires_suppressed": s.AcquiresSuppressed,
			"held_sent": s.HeldSent, "icmp_sent": s.ICMPSent, "spd_lookups": s.SPDLookups,
			"spd_hashed_hits": s.SPDHashedHits, "spd_list_hits": s.SPDListHits,
			"spd_list_scans": s.SPDListScans, "spd_list_entries": s.SPDListEntries,
			"neigh_held": s.NeighHeld, "neigh_resumed": s.NeighResumed, "fragments": s.Fragments,
		}
		for _, d := range dataplane.Drops() {
			m["drop_"+d.String()] = s.Drops[d]
		}
		out = append(out, api.Core{Core: w.ID(), Counters: m})
	}
	return out
}

// listPolicies describes the SPD and its policies, in lookup order.
func listPolicies(dp *dataplane.Dataplane) (*api.SPD, []api.Policy) {
	st := dp.SPD.Stats()
	th := st.Thresholds
	sum := &api.SPD{IPv4: [2]uint8{th.V4Local, th.V4Remote}, IPv6: [2]uint8{th.V6Local, th.V6Remote},
		Hashed: st.Hashed, Buckets: st.Buckets}
	var out []api.Policy
	for _, p := range dp.SPD.Policies() {
		a := api.Policy{ID: uint64(p.ID), Dir: p.Policy.Dir.String(), Local: p.Policy.Local.String(), Remote: p.Policy.Remote.String(),
			Proto: p.Policy.Proto, Priority: p.Policy.Priority, Action: p.Policy.Action.String(), Trap: p.Policy.Trap, Hashed: p.Hashed}
		var ports []string
		if r := p.Policy.LocalPorts; !r.Any() {
			ports = append(ports, "lport "+r.String())
		}
		if r := p.Policy.RemotePorts; !r.Any() {
			ports = append(ports, "rport "+r.String())
		}
		a.Ports = strings.Join(ports, " ")
		if p.Policy.Action == spd.Protect {
			a.ReqID = p.Policy.SA
		}
		out = append(out, a)
	}
	sum.Policies = len(out)
	return sum, out
}

// setThresholds applies "ipv4 LOCAL REMOTE" or "ipv6 LOCAL REMOTE" to the
// SPD: it rebuilds its hash table while lookups go on.
func setThresholds(dp *dataplane.Dataplane, arg string) error {
	f := strings.Fields(arg)
	if len(f) != 3 || f[0] != "ipv4" && f[0] != "ipv6" {
		return fmt.Errorf("sp-hash: want ipv4|ipv6 LOCAL REMOTE, got %q", arg)
	}
	max := 32
	if f[0] == "ipv6" {
		max = 128
	}
	var v [2]uint8
	for i, s := range f[1:] {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > max {
			return fmt.Errorf("sp-hash %s: %q is not a prefix length from 0 to %d", f[0], s, max)
		}
		v[i] = uint8(n)
	}
	th := dp.SPD.Thresholds()
	if f[0] == "ipv4" {
		th.V4Local, th.V4Remote = v[0], v[1]
	} else {
		th.V6Local, th.V6Remote = v[0], v[1]
	}
	return dp.SPD.SetThresholds(th)
}
