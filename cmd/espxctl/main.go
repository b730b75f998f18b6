// Command espxctl is the operator's tool for a running espxd: it talks to
// the daemon's control socket, which only root can open.
//
//	espxctl [-socket /run/espx/espxd.sock] [-json] sas|counters
//
// sas lists the installed SAs with their counters; counters prints each
// core's packet counters, drops by reason included.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

type saRow struct {
	SPI          string `json:"spi"`
	Dir          string `json:"dir"`
	ReqID        uint64 `json:"reqid"`
	Mode         string `json:"mode"`
	Src          string `json:"src"`
	Dst          string `json:"dst"`
	Encap        bool   `json:"encap"`
	ESN          bool   `json:"esn"`
	Transform    string `json:"transform"`
	ReplayWindow int    `json:"replay_window"`
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	Seq          uint64 `json:"seq"`
	AgeSeconds   int64  `json:"age_s"`
	IdleSeconds  int64  `json:"idle_s"`
}

type coreRow struct {
	Core     int               `json:"core"`
	Counters map[string]uint64 `json:"counters"`
}

type response struct {
	Error string    `json:"error"`
	SAs   []saRow   `json:"sas"`
	Cores []coreRow `json:"cores"`
}

func main() {
	socket := flag.String("socket", "/run/espx/espxd.sock", "espxd's control socket")
	asJSON := flag.Bool("json", false, "print the daemon's answer as JSON")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: espxctl [-socket path] [-json] sas|counters")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (flag.Arg(0) != "sas" && flag.Arg(0) != "counters") {
		flag.Usage()
		os.Exit(2)
	}
	raw, resp, err := ask(*socket, flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "espxctl:", err)
		os.Exit(1)
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return
	}
	switch flag.Arg(0) {
	case "sas":
		printSAs(resp.SAs)
	case "counters":
		printCounters(resp.Cores)
	}
}

func ask(socket, cmd string) ([]byte, *response, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("is espxd running? %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "{\"cmd\":%q}\n", cmd); err != nil {
		return nil, nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, nil, err
	}
	var r response
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, nil, err
	}
	if r.Error != "" {
		return nil, nil, fmt.Errorf("espxd: %s", r.Error)
	}
	return line, &r, nil
}

func printSAs(sas []saRow) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SPI\tDIR\tREQID\tMODE\tOUTER\tTRANSFORM\tPACKETS\tBYTES\tSEQ\tAGE\tIDLE")
	for _, s := range sas {
		outer := "-"
		if s.Src != "" {
			outer = s.Src + " -> " + s.Dst
		}
		if s.Encap {
			outer += " (udp)"
		}
		tr := s.Transform
		if s.ESN {
			tr += " esn"
		}
		idle := "never"
		if s.IdleSeconds >= 0 {
			idle = (time.Duration(s.IdleSeconds) * time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.SPI, s.Dir, s.ReqID, s.Mode, outer, tr,
			s.Packets, s.Bytes, s.Seq, time.Duration(s.AgeSeconds)*time.Second, idle)
	}
	w.Flush()
}

func printCounters(cores []coreRow) {
	names := map[string]bool{}
	for _, c := range cores {
		for k := range c.Counters {
			names[k] = true
		}
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := []string{"COUNTER"}
	for _, c := range cores {
		hdr = append(hdr, fmt.Sprintf("core %d", c.Core))
	}
	fmt.Fprintln(w, strings.Join(hdr, "\t")+"\t")
	for _, k := range keys {
		row := []string{k}
		any := false
		for _, c := range cores {
			v := c.Counters[k]
			any = any || v != 0
			row = append(row, fmt.Sprint(v))
		}
		// Drop reasons that never happened would bury the ones that did.
		if !any && strings.HasPrefix(k, "drop_") {
			continue
		}
		fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
	}
	w.Flush()
}
