package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/espx/espx/dataplane"
)

// The operator's API: espxctl sends one JSON request per line on a unix
// socket that only root can open, and gets one JSON answer per line.
type apiRequest struct {
	Cmd string `json:"cmd"` // sas, counters, ike, initiate, rekey, delete, flush
	Arg string `json:"arg,omitempty"`
}

type apiSA struct {
	SPI          string `json:"spi"`
	Dir          string `json:"dir"`
	ReqID        uint64 `json:"reqid"`
	Mode         string `json:"mode"`
	Src          string `json:"src,omitempty"`
	Dst          string `json:"dst,omitempty"`
	Encap        bool   `json:"encap,omitempty"`
	ESN          bool   `json:"esn,omitempty"`
	Transform    string `json:"transform"`
	ReplayWindow int    `json:"replay_window,omitempty"`
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	Seq          uint64 `json:"seq"`
	AgeSeconds   int64  `json:"age_s"`
	IdleSeconds  int64  `json:"idle_s"` // -1: never used
}

type apiCore struct {
	Core     int               `json:"core"`
	Counters map[string]uint64 `json:"counters"`
}

type apiIKESA struct {
	Name      string     `json:"name"`
	State     string     `json:"state"`
	Initiator bool       `json:"initiator"`
	SPIi      string     `json:"spi_i"`
	SPIr      string     `json:"spi_r"`
	Local     string     `json:"local"`
	Remote    string     `json:"remote"`
	NAT       string     `json:"nat,omitempty"`
	Suite     string     `json:"suite"`
	HeardS    int64      `json:"last_heard_s"` // -1: never
	Children  []apiChild `json:"children"`
}

type apiChild struct {
	InSPI    string   `json:"in_spi"`
	OutSPI   string   `json:"out_spi"`
	Proposal string   `json:"proposal"`
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
}

type apiResponse struct {
	Error string     `json:"error,omitempty"`
	SAs   []apiSA    `json:"sas,omitempty"`
	Cores []apiCore  `json:"cores,omitempty"`
	IKE   []apiIKESA `json:"ike,omitempty"`
	Done  string     `json:"done,omitempty"`
}

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
			go serveAPI(c, dp, k)
		}
	}()
	if cfg.file.Metrics.Listen != "" {
		if err := startMetrics(ctx, cfg, dp, gw, log); err != nil {
			return err
		}
	}
	return nil
}

func serveAPI(c net.Conn, dp *dataplane.Dataplane, k *ike) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	sc := bufio.NewScanner(c)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req apiRequest
		var resp apiResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			switch req.Cmd {
			case "sas":
				resp.SAs = listSAs(dp)
			case "counters":
				resp.Cores = counters(dp)
			case "ike":
				resp.IKE = k.list()
			case "initiate", "rekey", "delete", "flush":
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

func listSAs(dp *dataplane.Dataplane) []apiSA {
	now := time.Now()
	var out []apiSA
	for _, i := range dp.SAs() {
		a := apiSA{
			SPI: fmt.Sprintf("%#08x", i.SPI), Dir: "out", ReqID: i.ReqID, Mode: i.Mode.String(),
			Encap: i.Encap, ESN: i.ESN, Transform: transformName(i), ReplayWindow: i.ReplayWindow,
			Packets: i.Packets, Bytes: i.Bytes, Seq: i.Seq,
			AgeSeconds: int64(now.Sub(i.Added).Seconds()), IdleSeconds: -1,
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

func counters(dp *dataplane.Dataplane) []apiCore {
	var out []apiCore
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
			"neigh_held": s.NeighHeld, "neigh_resumed": s.NeighResumed, "fragments": s.Fragments,
		}
		for _, d := range dataplane.Drops() {
			m["drop_"+d.String()] = s.Drops[d]
		}
		out = append(out, apiCore{Core: w.ID(), Counters: m})
	}
	return out
}
