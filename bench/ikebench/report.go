package main

import (
	"fmt"
	"github.com/espx/espx/bench/internal/harness"
	"io"
	"slices"
	"strings"
)

// target is issue 6's: at least twice strongSwan's set-up rate.
const target = 2.0

// report prints, as Markdown, each mode's and responder's median and range
// over the rounds, then espx's ratio to strongSwan per mode.
func report(w io.Writer, results []result, o options) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | responder | tunnels/s median | range | runs | first s -> last s of window (median) | responder CPU | responder CPU per tunnel | initiators CPU | CPUs busy | failed / retransmits / drops (all runs) | tunnels at the end | host busy before |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, m := range o.modes {
		for _, s := range o.systems {
			rs := pick(results, m, s)
			if len(rs) == 0 {
				continue
			}
			rate := harness.Field(rs, func(r result) float64 { return r.rate })
			runs := make([]string, len(rate))
			for i, v := range rate {
				runs[i] = fmt.Sprintf("%.0f", v)
			}
			first := harness.Field(rs, func(r result) float64 { return r.perSecond[0] })
			last := harness.Field(rs, func(r result) float64 { return r.perSecond[len(r.perSecond)-1] })
			var busy []string
			for c := range rs[0].cpuBusy {
				busy = append(busy, fmt.Sprintf("%.0f", 100*harness.Median(harness.Field(rs, func(r result) float64 {
					if c < len(r.cpuBusy) {
						return r.cpuBusy[c]
					}
					return 0
				}))))
			}
			var failed, retr, drops uint64
			for _, r := range rs {
				failed += r.failed
				retr += r.retransmits
				drops += r.rcvbufDrops
			}
			fmt.Fprintf(w, "| %s | %s | **%.0f** | %.0f-%.0f | %s | %.0f -> %.0f | %.0f %% | %.0f us | %.0f %% | %s %% | %d / %d / %d | %.0f | %.0f %% |\n",
				m, s, harness.Median(rate), slices.Min(rate), slices.Max(rate), strings.Join(runs, ", "),
				harness.Median(first), harness.Median(last),
				100*harness.Median(harness.Field(rs, func(r result) float64 { return r.respCPU })),
				harness.Median(harness.Field(rs, func(r result) float64 { return r.usPerTunnel })),
				100*harness.Median(harness.Field(rs, func(r result) float64 { return r.initCPU })),
				strings.Join(busy, " / "), failed, retr, drops,
				harness.Median(harness.Field(rs, func(r result) float64 { return float64(r.total) })),
				100*harness.Median(harness.Field(rs, func(r result) float64 { return r.busyBefore })))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | espx / strongSwan, tunnels/s: ratio of medians | per-round ratios: median (range) | target 2x | strongSwan / espx, responder CPU per tunnel |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, m := range o.modes {
		e, s := pick(results, m, espx), pick(results, m, strongswan)
		if len(e) == 0 || len(s) == 0 {
			continue
		}
		var per []float64
		for _, x := range e {
			for _, y := range s {
				if x.round == y.round && y.rate > 0 {
					per = append(per, x.rate/y.rate)
				}
			}
		}
		em := harness.Median(harness.Field(e, func(r result) float64 { return r.rate }))
		sm := harness.Median(harness.Field(s, func(r result) float64 { return r.rate }))
		verdict := "met"
		if em/sm < target {
			verdict = "not met"
		}
		ec := harness.Median(harness.Field(e, func(r result) float64 { return r.usPerTunnel }))
		sc := harness.Median(harness.Field(s, func(r result) float64 { return r.usPerTunnel }))
		fmt.Fprintf(w, "| %s | **%.2fx** | %.2fx (%.2f-%.2f) | %s | %.2fx |\n", m, em/sm, harness.Median(per), slices.Min(per), slices.Max(per), verdict, sc/ec)
	}
}

func pick(results []result, m mode, s kind) []result {
	var out []result
	for _, r := range results {
		if r.mode == m && r.sys == s {
			out = append(out, r)
		}
	}
	return out
}
