package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/espx/espx/control"
	"github.com/espx/espx/dataplane"
)

// The espx responder is this program run as "ikebench responder" in the
// responder namespace: a separate process, so that it can be pinned to a
// CPU and its CPU time read apart from the initiators'. It prints "ready"
// once it listens, then answers each "count" line on its standard input
// with a line of counters, and exits when its standard input closes.

// Identities and proposals, the same for both responders.
var (
	initiatorID = &control.ID{IDType: control.IDFQDN, Data: []byte("initiator.example")}
	responderID = &control.ID{IDType: control.IDFQDN, Data: []byte("responder.example")}
)

const (
	ikeProposal = "aes128gcm16-prfsha256-x25519"
	espProposal = "aes128gcm16"
)

func runResponder(args []string) error {
	fs := flag.NewFlagSet("responder", flag.ContinueOnError)
	n := fs.Int("initiators", 0, "initiator addresses, from 198.51.100.1")
	pskHex := fs.String("psk", "", "pre-shared key, hex")
	verbose := fs.Bool("v", false, "log at info level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	psk, err := hex.DecodeString(*pskHex)
	if err != nil {
		return fmt.Errorf("-psk: %w", err)
	}
	ike, err := control.ParseProposals(control.ProtoIKE, ikeProposal)
	if err != nil {
		return err
	}
	esp, err := control.ParseProposals(control.ProtoESP, espProposal)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Lifetimes and their checks, as espxd's data plane runs them: the
	// strongSwan child SA defaults (rekey after 1 h less up to 6 min,
	// gone after 66 min), which libipsec schedules too.
	go dp.Run(ctx)

	local := netip.MustParseAddr(respAddr)
	inst := &dpInstaller{dp: dp, reqids: map[netip.Addr]uint64{}}
	// control's responder finds the configuration of an IKE_SA_INIT
	// request by its source and destination addresses (Daemon.peerFor);
	// it has no wildcard peer, so each initiator address gets its own
	// PeerConfig, as a gateway with that many site-to-site peers has.
	var peers []*control.PeerConfig
	for i := range *n {
		a := initiatorAddr(i)
		inst.reqids[a] = uint64(i + 1)
		peers = append(peers, &control.PeerConfig{
			Name:  "init-" + a.String(),
			Local: netip.AddrPortFrom(local, 500), Remote: netip.AddrPortFrom(a, 500),
			LocalID: responderID, RemoteID: initiatorID,
			PSK: psk, IKE: ike, ESP: esp,
			LocalTS:  []control.TrafficSelector{control.SelectorFromPrefix(netip.MustParsePrefix(protNet))},
			RemoteTS: []control.TrafficSelector{control.SelectorFromPrefix(netip.MustParsePrefix(initTSNet))},
			// As libipsec does: IKE floats to 4500 and ESP goes in UDP.
			ForceEncap: true,
		})
	}
	udp, err := control.ListenUDP([]netip.Addr{local})
	if err != nil {
		return err
	}
	defer udp.Close()
	d, err := control.NewDaemon(udp, inst, peers, log)
	if err != nil {
		return err
	}
	// Out of the benchmark's way: no cookies, no per-peer or half-open
	// caps (0 would mean the defaults of 10 and 5).
	d.SetLimits(control.Limits{CookieThreshold: 1 << 30, BlockThreshold: 1 << 30})
	udp.Serve(d)

	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() != "count" {
			continue
		}
		fmt.Printf("%d %d %d %d %d\n", inst.tunnels.Load(), inst.failed.Load(), d.Stats.AuthFailed.Load(),
			d.Stats.InitDropped.Load()+d.Stats.CookiesSent.Load(), d.Stats.Retransmitted.Load())
	}
	return sc.Err()
}

// dpInstaller puts child SAs into a real data plane, as espxd's
// ikeInstaller does: the data plane's SAD builds each direction's runtime
// SA (AEAD instance, prebuilt outer headers, replay window) and publishes
// it. Policies are per connection in espx, installed with the
// configuration, not per child SA, so there are none to add here.
type dpInstaller struct {
	dp     *dataplane.Dataplane
	reqids map[netip.Addr]uint64 // by peer address; read-only once serving
	// tunnels counts outbound SAs installed: the last step of a child SA,
	// so the count of IKE SAs with their child SA up.
	tunnels atomic.Uint64
	failed  atomic.Uint64
}

func (in *dpInstaller) AllocSPI() (uint32, error) { return in.dp.AllocSPI() }

func (in *dpInstaller) AddSA(c *control.ChildSA) error {
	reqid, ok := in.reqids[c.Remote.Addr()]
	if !ok {
		in.failed.Add(1)
		return fmt.Errorf("no connection with peer %v", c.Remote.Addr())
	}
	soft := time.Hour - time.Duration(rand.Int64N(int64(6*time.Minute)))
	sa := dataplane.SA{Inbound: c.Inbound, Lifetime: dataplane.Lifetime{SoftAdd: soft, HardAdd: 66 * time.Minute},
		SAConfig: dataplane.SAConfig{
			SPI: c.SPI, ReqID: reqid, Transform: c.Transform, ESN: c.ESN, Mode: dataplane.ModeTunnel,
			Encap: c.Encap, ReplayWindow: c.ReplayWindow,
		}}
	if c.Inbound {
		sa.Src, sa.Dst = c.Remote.Addr(), c.Local.Addr()
		sa.SrcPort, sa.DstPort = c.Remote.Port(), c.Local.Port()
	} else {
		sa.Src, sa.Dst = c.Local.Addr(), c.Remote.Addr()
		sa.SrcPort, sa.DstPort = c.Local.Port(), c.Remote.Port()
	}
	if err := in.dp.AddSA(sa); err != nil {
		in.failed.Add(1)
		return err
	}
	if !c.Inbound {
		in.tunnels.Add(1)
	}
	return nil
}

func (in *dpInstaller) DeleteSA(spi uint32, inbound bool) error {
	return in.dp.DeleteSA(spi, inbound)
}
