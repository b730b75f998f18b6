// Command espxctl is the operator's tool for a running espxd: it talks to
// the daemon's control socket, which only root can open.
//
//	espxctl [-socket /run/espx/espxd.sock] [-json] COMMAND [ARG]
//
//	sas               the SAs in the data plane, with their counters
//	counters          each core's packet counters, drops by reason included
//	ike               the IKE SAs and their child SAs
//	initiate NAME     bring up connection NAME
//	rekey SPI         rekey the child SA with this inbound or outbound SPI
//	delete SPI        delete that child SA (its IKE SA stays)
//	flush [NAME]      delete the IKE SAs (and child SAs) of NAME, or all
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

type childRow struct {
	InSPI    string   `json:"in_spi"`
	OutSPI   string   `json:"out_spi"`
	Proposal string   `json:"proposal"`
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
}

type ikeRow struct {
	Name      string     `json:"name"`
	State     string     `json:"state"`
	Initiator bool       `json:"initiator"`
	SPIi      string     `json:"spi_i"`
	SPIr      string     `json:"spi_r"`
	Local     string     `json:"local"`
	Remote    string     `json:"remote"`
	NAT       string     `json:"nat"`
	Suite     string     `json:"suite"`
	HeardS    int64      `json:"last_heard_s"`
	Children  []childRow `json:"children"`
}

type response struct {
	Error string    `json:"error"`
	SAs   []saRow   `json:"sas"`
	Cores []coreRow `json:"cores"`
	IKE   []ikeRow  `json:"ike"`
	Done  string    `json:"done"`
}

// commands and how many arguments each takes at most.
var commands = map[string]int{"sas": 0, "counters": 0, "ike": 0, "initiate": 1, "rekey": 1, "delete": 1, "flush": 1}

func main() {
	socket := flag.String("socket", "/run/espx/espxd.sock", "espxd's control socket")
	asJSON := flag.Bool("json", false, "print the daemon's answer as JSON")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: espxctl [-socket path] [-json] sas|counters|ike|initiate NAME|rekey SPI|delete SPI|flush [NAME]")
		flag.PrintDefaults()
	}
	flag.Parse()
	maxArgs, ok := commands[flag.Arg(0)]
	if !ok || flag.NArg()-1 > maxArgs || (flag.Arg(0) == "initiate" || flag.Arg(0) == "rekey" || flag.Arg(0) == "delete") && flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	raw, resp, err := ask(*socket, flag.Arg(0), flag.Arg(1))
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
	case "ike":
		printIKE(resp.IKE)
	default:
		fmt.Println(resp.Done)
	}
}

func printIKE(sas []ikeRow) {
	for _, s := range sas {
		role := "responder"
		if s.Initiator {
			role = "initiator"
		}
		fmt.Printf("%s: %s, %s, %s[%s] -> %s[%s]", s.Name, s.State, role, s.Local, s.SPIi, s.Remote, s.SPIr)
		if s.NAT != "" {
			fmt.Printf(", NAT %s", s.NAT)
		}
		fmt.Println()
		if s.Suite != "" {
			heard := "never"
			if s.HeardS >= 0 {
				heard = (time.Duration(s.HeardS) * time.Second).String() + " ago"
			}
			fmt.Printf("  %s, peer last heard %s\n", s.Suite, heard)
		}
		for _, c := range s.Children {
			fmt.Printf("  child %s/%s %s\n    %s === %s\n", c.InSPI, c.OutSPI, c.Proposal,
				strings.Join(c.LocalTS, " "), strings.Join(c.RemoteTS, " "))
		}
	}
}

func ask(socket, cmd, arg string) ([]byte, *response, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("is espxd running? %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := json.Marshal(map[string]string{"cmd": cmd, "arg": arg})
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.Write(append(req, '\n')); err != nil {
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
