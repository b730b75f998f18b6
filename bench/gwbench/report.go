package main

import (
	"fmt"
	"github.com/espx/espx/bench/internal/harness"
	"io"
	"slices"
	"strings"
)

// report prints, as Markdown, the median and range of each system and
// direction over the rounds, then espx's ratio to each strongSwan variant.
func report(w io.Writer, results []result, systems []system) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| gateways | direction | Mbit/s median | range | runs (Mbit/s) | retransmits median | gw daemon CPU median, gwA / gwB | host busy median |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, s := range systems {
		for _, rev := range []bool{false, true} {
			rs := pick(results, s, rev)
			if len(rs) == 0 {
				continue
			}
			mb := harness.Field(rs, func(r result) float64 { return r.mbps })
			runs := make([]string, len(mb))
			for i, v := range mb {
				runs[i] = fmt.Sprintf("%.0f", v)
			}
			gwCPU := "-"
			if s.kind != plain {
				gwCPU = fmt.Sprintf("%.0f %% / %.0f %%", harness.Median(harness.Field(rs, func(r result) float64 { return r.gwCPU[0] })),
					harness.Median(harness.Field(rs, func(r result) float64 { return r.gwCPU[1] })))
			}
			fmt.Fprintf(w, "| %s | %s | **%.0f** | %.0f-%.0f | %s | %.0f | %s | %.0f %% |\n",
				s, rs[0].direction(), harness.Median(mb), slices.Min(mb), slices.Max(mb), strings.Join(runs, ", "),
				harness.Median(harness.Field(rs, func(r result) float64 { return float64(r.retransmits) })), gwCPU,
				harness.Median(harness.Field(rs, func(r result) float64 { return r.hostBusy })))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| espx / | direction | ratio of medians | per-round ratios (median, range) | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, s := range systems {
		if s.kind != strongswan {
			continue
		}
		for _, rev := range []bool{false, true} {
			e, o := pick(results, system{kind: espx}, rev), pick(results, s, rev)
			if len(e) == 0 || len(o) == 0 {
				continue
			}
			var per []float64
			for _, x := range e {
				for _, y := range o {
					if x.round == y.round && y.mbps > 0 {
						per = append(per, x.mbps/y.mbps)
					}
				}
			}
			em, om := harness.Median(harness.Field(e, func(r result) float64 { return r.mbps })), harness.Median(harness.Field(o, func(r result) float64 { return r.mbps }))
			verdict := "met"
			if em/om < 4 {
				verdict = "not met"
			}
			fmt.Fprintf(w, "| %s | %s | **%.2fx** | %.2fx (%.2f-%.2f) | 4x: %s |\n", s, e[0].direction(), em/om,
				harness.Median(per), slices.Min(per), slices.Max(per), verdict)
		}
	}
}

func pick(results []result, s system, reverse bool) []result {
	var out []result
	for _, r := range results {
		if r.sys == s && r.reverse == reverse {
			out = append(out, r)
		}
	}
	return out
}
