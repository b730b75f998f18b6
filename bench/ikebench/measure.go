package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// result is one measurement: one responder in one mode for one window.
type result struct {
	round int
	mode  mode
	sys   kind
	// rate is tunnels (IKE SA plus child SA) per second counted at the
	// responder; initRate the child SAs the initiators installed.
	rate, initRate float64
	perSecond      []float64 // initiator-counted, each second of the window
	respCPU        float64   // the responder's CPU, in CPUs (1 = one CPU all the time)
	initCPU        float64   // this process's (the initiators'), in CPUs
	cpuBusy        []float64 // each CPU's busy fraction, everything on it
	usPerTunnel    float64   // responder CPU time per tunnel, microseconds
	failed         uint64    // IKE SAs the initiators saw fail in the window
	retransmits    uint64    // initiators' retransmitted requests in the window
	rcvbufDrops    uint64    // UDP datagrams the responder's namespace dropped, window
	total          uint64    // tunnels at the responder at the window's end
	busyBefore     float64   // all CPUs' busy fraction in the second before
}

// snapshot is what the counters say at one moment.
type snapshot struct {
	t                time.Time
	resp, init       uint64
	respCPU, initCPU float64
	cpus             cpuTimes
	retransmits      uint64
	rcvbuf           uint64
}

func (b *bench) snapshot(ctx context.Context, r responder, l *load) (snapshot, error) {
	t0 := time.Now()
	n, err := r.established(ctx)
	t1 := time.Now()
	if err != nil {
		return snapshot{}, err
	}
	// The responder's count is of the moment it answered: about the
	// middle of the query.
	return snapshot{
		t: t0.Add(t1.Sub(t0) / 2), resp: n, init: l.tunnels(),
		respCPU: procCPU(r.pid()), initCPU: procCPU(os.Getpid()), cpus: readCPUTimes(),
		retransmits: l.retransmits(), rcvbuf: udpRcvbufErrors(r.pid()),
	}, nil
}

// measure starts responder s in mode m, loads it with fresh initiators,
// counts over the window and removes everything again.
func (b *bench) measure(ctx context.Context, round int, m mode, s kind) error {
	mark := b.Mark()
	defer b.PopTo(mark)
	busy := b.waitIdle(ctx)
	respCPUs, initCPUs := allCPUs(), allCPUs()
	if m == pinned {
		respCPUs, initCPUs = []int{0}, []int{1}
	}
	var r responder
	var err error
	switch s {
	case espx:
		r, err = b.startEspx(ctx, respCPUs)
	case strongswan:
		r, err = b.startCharon(ctx, respCPUs)
	}
	if err != nil {
		return err
	}
	if err := pinSelf(initCPUs); err != nil {
		return err
	}
	l, err := b.startLoad()
	if err != nil {
		return err
	}
	b.AtExit(l.close)
	if err := sleep(ctx, b.opt.warmup); err != nil {
		return err
	}
	failed0 := l.failed.Load()
	s0, err := b.snapshot(ctx, r, l)
	if err != nil {
		return err
	}
	var per []float64
	prev, prevT := l.tunnels(), time.Now()
	for range int(b.opt.window / time.Second) {
		if err := sleep(ctx, time.Until(prevT.Add(time.Second))); err != nil {
			return err
		}
		cur, now := l.tunnels(), time.Now()
		per = append(per, float64(cur-prev)/now.Sub(prevT).Seconds())
		prev, prevT = cur, now
	}
	s1, err := b.snapshot(ctx, r, l)
	if err != nil {
		return err
	}
	failed := l.failed.Load() - failed0
	l.close()
	secs := s1.t.Sub(s0.t).Seconds()
	res := result{
		round: round, mode: m, sys: s,
		rate:        float64(s1.resp-s0.resp) / secs,
		initRate:    float64(s1.init-s0.init) / secs,
		perSecond:   per,
		respCPU:     (s1.respCPU - s0.respCPU) / secs,
		initCPU:     (s1.initCPU - s0.initCPU) / secs,
		cpuBusy:     s1.cpus.busySince(s0.cpus),
		failed:      failed,
		retransmits: s1.retransmits - s0.retransmits,
		rcvbufDrops: s1.rcvbuf - s0.rcvbuf,
		total:       s1.resp,
		busyBefore:  busy,
	}
	if n := s1.resp - s0.resp; n > 0 {
		res.usPerTunnel = (s1.respCPU - s0.respCPU) / float64(n) * 1e6
	} else {
		return fmt.Errorf("%w in the window (initiators: %d failed, last error %v)", errNoProgress, failed, l.err())
	}
	// The initiators must have installed the child SAs the responder
	// counted, less those whose IKE_AUTH response was still on its way.
	if in, out := s1.init-s0.init, s1.resp-s0.resp; float64(in) < 0.9*float64(out) {
		return fmt.Errorf("the responder counted %d tunnels but the initiators installed %d child SAs", out, in)
	}
	b.results = append(b.results, res)
	ps := make([]string, len(per))
	for i, v := range per {
		ps[i] = fmt.Sprintf("%.0f", v)
	}
	busyCPUs := make([]string, len(res.cpuBusy))
	for i, v := range res.cpuBusy {
		busyCPUs[i] = fmt.Sprintf("%.0f", v*100)
	}
	fmt.Printf("  round %d %-6s %-10s %6.0f tunnels/s (initiators %6.0f; per s %s)  responder CPU %3.0f%% = %4.0f us/tunnel  initiators CPU %3.0f%%  CPUs busy %s%%  failed %d retr %d drops %d  SAs %d  (host busy before %.0f%%)\n",
		round, m, s, res.rate, res.initRate, strings.Join(ps, " "), res.respCPU*100, res.usPerTunnel, res.initCPU*100,
		strings.Join(busyCPUs, "/"), res.failed, res.retransmits, res.rcvbufDrops, res.total, busy*100)
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitIdle waits up to -idle-wait for a second in which the host is at
// most -idle-busy percent busy, and returns the last second's busy
// fraction. The machine may be shared; the figure is reported either way.
func (b *bench) waitIdle(ctx context.Context) float64 {
	deadline := time.Now().Add(b.opt.idleWait)
	for {
		t0 := readCPUTimes()
		if sleep(ctx, time.Second) != nil {
			return 0
		}
		busy := readCPUTimes().allBusySince(t0)
		if busy*100 <= b.opt.idleBusy || time.Now().After(deadline) {
			return busy
		}
	}
}
