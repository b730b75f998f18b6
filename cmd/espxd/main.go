// Command espxd is the espx IPsec gateway daemon. In static mode it runs
// the data plane from a configuration file holding manual SAs and
// policies, the equivalent of `ip xfrm state add` and `ip xfrm policy
// add`, without IKE:
//
//	espxd -config /etc/espx/espxd.toml [-check] [-v]
//
// A configuration with an error is refused whole, with the field and the
// reason, before anything is attached. See deploy/espxd.example.toml.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/espx/espx/afxdp"
	"github.com/espx/espx/dataplane"
)

func main() {
	configPath := flag.String("config", "/etc/espx/espxd.toml", "configuration file")
	check := flag.Bool("check", false, "check the configuration and exit")
	verbose := flag.Bool("v", false, "log debug messages")
	logKeys := flag.Bool("log-keys", false, "with -v: log each IKE SA's keys as a line of Wireshark's IKEv2 decryption table, to read a capture while debugging interoperability (never otherwise)")
	flag.Parse()
	if *logKeys && !*verbose {
		fmt.Fprintln(os.Stderr, "espxd: -log-keys needs -v: keys are logged only at the most verbose level")
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "espxd: %s: %v\n", *configPath, err)
		os.Exit(2)
	}
	cfg.logKeys = *logKeys
	if *check {
		fmt.Printf("%s: %d SAs, %d policies, %d connections: ok\n", *configPath, len(cfg.sas), len(cfg.policies), len(cfg.conns))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("espxd", "err", err)
		os.Exit(1)
	}
}

// install puts the static SAs and policies into dp: inbound SAs before
// outbound ones, and SAs before the policies that use them, so that no
// packet meets a policy whose SA is missing.
func install(dp *dataplane.Dataplane, cfg *config) error {
	for _, inbound := range []bool{true, false} {
		for _, sa := range cfg.sas {
			if sa.Inbound != inbound {
				continue
			}
			if err := dp.AddSA(sa); err != nil {
				return fmt.Errorf("SA %#x: %w", sa.SPI, err)
			}
		}
	}
	for _, p := range cfg.policies {
		if _, err := dp.AddPolicy(p); err != nil {
			return fmt.Errorf("policy %v: %w", p, err)
		}
	}
	for _, c := range cfg.conns {
		for _, p := range c.policies() {
			if _, err := dp.AddPolicy(p); err != nil {
				return fmt.Errorf("connection %s: policy %v: %w", c.peer.Name, p, err)
			}
		}
	}
	return nil
}

func run(ctx context.Context, cfg *config, log *slog.Logger) error {
	dp, err := dataplane.New(cfg.dp)
	if err != nil {
		return err
	}
	if err := install(dp, cfg); err != nil {
		return err
	}
	d := &cfg.file.Dataplane
	gc := dataplane.GatewayConfig{
		Protected: d.Protected, Unprotected: d.Unprotected, Queues: d.Queues, CPUs: d.CPUs,
		Frames: d.Frames, FrameSize: d.FrameSize, Log: log,
	}
	switch cfg.attachMode {
	case "native":
		gc.AttachMode = afxdp.AttachNative
	case "generic":
		gc.AttachMode = afxdp.AttachGeneric
	}
	switch cfg.bindMode {
	case "zerocopy":
		gc.BindMode = afxdp.BindZeroCopy
	case "copy":
		gc.BindMode = afxdp.BindCopy
	}
	gw, err := dp.Start(ctx, gc)
	if err != nil {
		return err
	}
	log.Info("espxd running", "sas", len(cfg.sas), "policies", len(cfg.policies), "workers", len(dp.Workers()))
	k, err := startIKE(ctx, cfg.conns, dp, cfg.logKeys, log)
	if err != nil {
		gw.Close()
		return err
	}
	if err := startAPI(ctx, cfg, dp, gw, k, log); err != nil {
		gw.Close()
		return err
	}
	go func() {
		for ev := range dp.Events() {
			log.Info("event", "kind", ev.Kind.String(), "spi", fmt.Sprintf("%#x", ev.SPI), "reqid", ev.ReqID,
				"reason", ev.Reason, "policy", ev.Policy.String())
			k.event(ev)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- gw.Wait() }()
	select {
	case <-ctx.Done():
		gw.Close()
		err = <-errc
	case err = <-errc:
	}
	if cerr := gw.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
		log.Warn("close", "err", cerr)
	}
	return err
}
