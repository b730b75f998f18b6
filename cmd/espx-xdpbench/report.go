package main

import (
	"fmt"
	"strings"
)

// targets are issue 4's, in frames per second, on one core at 64 bytes.
var targets = map[string]float64{"rx-drop": 2.5e6, "l2fwd": 0.6e6}

// espxTarget is issue 5's: espx's encrypt-and-forward rate at least this
// fraction of l2fwd's, on the same topology in the same run.
const espxTarget = 0.7

func printResult(r result, o options) {
	capa := statOf(r.overload, sample.rate)
	fmt.Printf("%s  unpaced %6.3f Mpps [%.3f-%.3f] (offered %.3f, loss %.2f%%)",
		r.cfg, capa.med/1e6, capa.lo/1e6, capa.hi/1e6, median(r.overload, sample.offered)/1e6, median(r.overload, sample.loss)*100)
	switch {
	case len(r.confirm) == 0:
		fmt.Printf("; no rate lost less than %.3g%%", o.loss*100)
	case r.unconfirmed:
		l := statOf(r.confirm, sample.loss)
		fmt.Printf("; NOT CONFIRMED: the runs at %.3f Mpps (target) lost %.3f%% in the median [max %.3f%%]",
			r.rate/1e6, l.med*100, l.hi*100)
	default:
		t, l := statOf(r.confirm, sample.rate), statOf(r.confirm, sample.loss)
		fmt.Printf("; at <= %.3g%% loss %6.3f Mpps [%.3f-%.3f] (offered %.3f) loss %.3f%% [max %.3f%%]%s",
			o.loss*100, t.med/1e6, t.lo/1e6, t.hi/1e6, median(r.confirm, sample.offered)/1e6, l.med*100, l.hi*100, limitNote(r))
	}
	fmt.Printf("; %d search steps, %d step-downs, %d trials redone, %d disturbed kept\n", r.steps, r.stepDowns, r.redone, r.kept)
	fmt.Printf("%22s unpaced: %s\n", "", medianRun(r.overload).cpuLine())
	if len(r.confirm) > 0 && !r.unpacedOK {
		fmt.Printf("%22s at rate:  %s\n", "", medianRun(r.confirm).cpuLine())
	}
}

func limitNote(r result) string {
	if r.limited {
		return " (generator-limited)"
	}
	return ""
}

// printSummary prints the results as a Markdown table, then the targets.
func printSummary(rs []result, o options) {
	fmt.Printf("| mode | DUT's kernel receive on | wait | Mpps at <= %.3g%% loss: median (min-max) | loss there: median (max) | unpaced: delivered of offered, Mpps | worker thread | DUT NAPI thread | worker's CPU busy | generator's CPU busy |\n", o.loss*100)
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		c := r.cfg
		where := "generator's CPU"
		if c.placement == "one-core" {
			where = "worker's CPU"
		}
		capa := statOf(r.overload, sample.rate)
		row := fmt.Sprintf("| %s | %s | %s |", c.mode, where, c.wait)
		s := medianRun(r.overload)
		switch {
		case len(r.confirm) == 0:
			row += " none | |"
		case r.unconfirmed:
			s = medianRun(r.confirm)
			l := statOf(r.confirm, sample.loss)
			row += fmt.Sprintf(" not confirmed | %.3f%% (%.3f%%) |", l.med*100, l.hi*100)
		default:
			s = medianRun(r.confirm)
			t, l := statOf(r.confirm, sample.rate), statOf(r.confirm, sample.loss)
			row += fmt.Sprintf(" **%.2f** (%.2f-%.2f)%s | %.3f%% (%.3f%%) |", t.med/1e6, t.lo/1e6, t.hi/1e6, limitNote(r), l.med*100, l.hi*100)
		}
		row += fmt.Sprintf(" %.2f of %.2f | %s | %s | %s | %s |", capa.med/1e6, median(r.overload, sample.offered)/1e6,
			pct(s, "worker"), pct(s, "DUT NAPI"), busy(s, o.workerCPU), busy(s, o.genCPU))
		fmt.Println(row)
	}
	fmt.Println()
	for _, mode := range []string{"rx-drop", "l2fwd"} {
		want := targets[mode]
		for _, r := range rs {
			if r.cfg.mode != mode {
				continue
			}
			got := 0.0
			if len(r.confirm) > 0 {
				got = median(r.confirm, sample.rate)
			}
			verdict := "not met"
			switch {
			case len(r.confirm) == 0:
				verdict = "not met: no rate lost little enough"
			case r.unconfirmed:
				verdict = "not established (no rate confirmed)"
			case got >= want:
				verdict = "met"
			}
			cfg := strings.Join(strings.Fields(r.cfg.String())[1:], " ")
			if r.unconfirmed || len(r.confirm) == 0 {
				fmt.Printf("target %s >= %.1f Mpps, %s: %s\n", mode, want/1e6, cfg, verdict)
				continue
			}
			fmt.Printf("target %s >= %.1f Mpps, %s: %.2f Mpps%s, %s\n", mode, want/1e6, cfg, got/1e6, limitNote(r), verdict)
		}
	}
	printRatios(rs)
}

// printRatios compares each espx figure with each l2fwd figure of the
// same placement and wait (-modes may name l2fwd twice, before and after
// espx, to see the host drift): the ratio of the medians, and the ratios
// of the lowest espx run to the highest l2fwd run and the other way
// round, as the range.
func printRatios(rs []result) {
	for _, e := range rs {
		if e.cfg.mode != "espx" {
			continue
		}
		cfg := strings.Join(strings.Fields(e.cfg.String())[1:], " ")
		n := 0 // l2fwd figures of this configuration so far
		for _, l := range rs {
			if l.cfg.mode != "l2fwd" || l.cfg.placement != e.cfg.placement || l.cfg.wait != e.cfg.wait {
				continue
			}
			n++
			if !confirmed(e) || !confirmed(l) {
				fmt.Printf("target espx >= %.0f%% of l2fwd (l2fwd #%d), %s: not established (no confirmed rate for espx or l2fwd)\n", espxTarget*100, n, cfg)
				continue
			}
			es, ls := statOf(e.confirm, sample.rate), statOf(l.confirm, sample.rate)
			ratio := es.med / ls.med
			verdict := "not met"
			if ratio >= espxTarget {
				verdict = "met"
			}
			fmt.Printf("target espx >= %.0f%% of l2fwd (l2fwd #%d), %s: %.2f Mpps%s of %.2f Mpps%s = %.0f%% (runs' extremes %.0f-%.0f%%), %s\n",
				espxTarget*100, n, cfg, es.med/1e6, limitNote(e), ls.med/1e6, limitNote(l), ratio*100, es.lo/ls.hi*100, es.hi/ls.lo*100, verdict)
		}
		if n == 0 {
			fmt.Printf("target espx >= %.0f%% of l2fwd, %s: no l2fwd figure in this run\n", espxTarget*100, cfg)
		}
	}
}

func confirmed(r result) bool { return len(r.confirm) > 0 && !r.unconfirmed }

func pct(s sample, thread string) string {
	if f, _, ok := s.thread(thread); ok {
		return fmt.Sprintf("%.0f%%", f*100)
	}
	return "-"
}

func busy(s sample, cpu int) string {
	if cpu >= len(s.cpus) {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", s.cpus[cpu].busy*100)
}
