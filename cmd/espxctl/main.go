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
//	reauth NAME       reauthenticate connection NAME: new IKE and child SAs
//	flush [NAME]      delete the IKE SAs (and child SAs) of NAME, or all
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/espx/espx/control/api"
)

// commands and how many arguments each takes at most.
// commands are the commands with how many arguments they take at most;
// exact lists those that take exactly that many.
var (
	commands = map[string]int{"sas": 0, "counters": 0, "ike": 0, "policies": 0, "initiate": 1, "rekey": 1, "delete": 1, "reauth": 1, "flush": 1, "sp-hash": 3}
	exact    = map[string]bool{"initiate": true, "rekey": true, "delete": true, "reauth": true, "sp-hash": true}
)

func main() {
	socket := flag.String("socket", "/run/espx/espxd.sock", "espxd's control socket")
	asJSON := flag.Bool("json", false, "print the daemon's answer as JSON")
	details := flag.Bool("details", false, "sas: every field of each SA; counters: zero drop reasons too")
	keys := flag.Bool("keys", false, "sas: each SA's keys too, in hex (to decrypt a capture); espxd logs the request")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: espxctl [-socket path] [-json] [-details] [-keys] sas|counters|ike|policies|initiate NAME|rekey SPI|delete SPI|reauth NAME|flush [NAME]|sp-hash ipv4|ipv6 LOCAL REMOTE")
		flag.PrintDefaults()
	}
	flag.Parse()
	maxArgs, ok := commands[flag.Arg(0)]
	if !ok || flag.NArg()-1 > maxArgs || exact[flag.Arg(0)] && flag.NArg()-1 != maxArgs {
		flag.Usage()
		os.Exit(2)
	}
	raw, resp, err := api.Ask(*socket, api.Request{Cmd: flag.Arg(0), Arg: strings.Join(flag.Args()[1:], " "), Keys: *keys && flag.Arg(0) == "sas"})
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
		if *details || *keys {
			printSADetails(resp.SAs)
		} else {
			printSAs(resp.SAs)
		}
	case "counters":
		printCounters(resp.Cores, *details)
	case "ike":
		printIKE(resp.IKE)
	case "policies":
		printPolicies(resp.SPD, resp.Policies)
	case "sp-hash":
		fmt.Printf("%s\n%d of %d policies hashed, %d buckets\n", resp.Done, resp.SPD.Hashed, resp.SPD.Policies, resp.SPD.Buckets)
	default:
		fmt.Println(resp.Done)
	}
}

func printIKE(sas []api.IKESA) {
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
			idle := "never used"
			if c.IdleSeconds >= 0 {
				idle = "idle " + (time.Duration(c.IdleSeconds) * time.Second).String()
			}
			fmt.Printf("  child %s %s/%s %s, age %s, %s\n    in  %d packets, %d bytes\n    out %d packets, %d bytes\n    %s === %s\n",
				c.Name, c.InSPI, c.OutSPI, c.Proposal, time.Duration(c.AgeSeconds)*time.Second, idle,
				c.InPackets, c.InBytes, c.OutPackets, c.OutBytes,
				strings.Join(c.LocalTS, " "), strings.Join(c.RemoteTS, " "))
		}
	}
}

func printSAs(sas []api.SA) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SPI\tDIR\tREQID\tCONNECTION\tMODE\tOUTER\tTRANSFORM\tPACKETS\tBYTES\tSEQ\tAGE\tIDLE")
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
		conn := s.Conn
		if conn == "" {
			conn = "-" // a static SA
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.SPI, s.Dir, s.ReqID, conn, s.Mode, outer, tr,
			s.Packets, s.Bytes, s.Seq, time.Duration(s.AgeSeconds)*time.Second, idle)
	}
	w.Flush()
}

// printSADetails prints each SA with every field, as swanctl's
// --list-sas with details; keys only if the request asked for them.
func printSADetails(sas []api.SA) {
	for _, s := range sas {
		fmt.Printf("%s %s reqid %d %s", s.SPI, s.Dir, s.ReqID, s.Mode)
		if s.Conn != "" {
			fmt.Printf(", connection %s", s.Conn)
		}
		fmt.Println()
		if s.Src != "" {
			fmt.Printf("  outer %s -> %s", s.Src, s.Dst)
			if s.Encap {
				fmt.Printf(", ESP in UDP %d -> %d", s.SrcPort, s.DstPort)
			}
			fmt.Println()
		}
		fmt.Printf("  %s, esn %v", s.Transform, s.ESN)
		if s.Dir == "in" {
			fmt.Printf(", replay window %d; dropped: %d replays, %d too old, %d failed ICVs",
				s.ReplayWindow, s.Replay, s.TooOld, s.AuthFailed)
		}
		fmt.Printf("\n  %d packets, %d bytes, sequence number %d, age %s, ", s.Packets, s.Bytes, s.Seq,
			time.Duration(s.AgeSeconds)*time.Second)
		if s.IdleSeconds < 0 {
			fmt.Println("never used")
		} else {
			fmt.Printf("idle %s\n", time.Duration(s.IdleSeconds)*time.Second)
		}
		limit := func(name string, soft, hard uint64, unit string) {
			if soft != 0 || hard != 0 {
				fmt.Printf("  %s: soft %d%s, hard %d%s\n", name, soft, unit, hard, unit)
			}
		}
		limit("time", uint64(s.SoftSeconds), uint64(s.HardSeconds), "s")
		limit("bytes", s.SoftBytes, s.HardBytes, "")
		limit("packets", s.SoftPackets, s.HardPackets, "")
		if s.EncrKey != "" {
			fmt.Printf("  encryption key 0x%s\n", s.EncrKey)
		}
		if s.IntegKey != "" {
			fmt.Printf("  integrity key 0x%s\n", s.IntegKey)
		}
	}
}

func printCounters(cores []api.Core, all bool) {
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
		if !any && !all && strings.HasPrefix(k, "drop_") {
			continue
		}
		fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
	}
	w.Flush()
}

// printPolicies lists the SPD as `ip xfrm policy` would, in lookup order,
// marking where each policy is kept.
func printPolicies(sum *api.SPD, ps []api.Policy) {
	fmt.Printf("sp-hash-ipv4 local %d remote %d, sp-hash-ipv6 local %d remote %d: %d of %d policies hashed, %d buckets\n",
		sum.IPv4[0], sum.IPv4[1], sum.IPv6[0], sum.IPv6[1], sum.Hashed, sum.Policies, sum.Buckets)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tDIR\tLOCAL\tREMOTE\tPROTO\tPRIO\tACTION\tREQID\tKEPT")
	for _, p := range ps {
		proto := "any"
		if p.Proto != 0 {
			proto = strconv.Itoa(int(p.Proto))
		}
		if p.Ports != "" {
			proto += " " + p.Ports
		}
		action := p.Action
		if p.Trap {
			action += " (trap)"
		}
		reqid, kept := "-", "list"
		if p.ReqID != 0 || p.Action == "protect" {
			reqid = strconv.FormatUint(p.ReqID, 10)
		}
		if p.Hashed {
			kept = "hash"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.Dir, p.Local, p.Remote, proto, p.Priority, action, reqid, kept)
	}
	w.Flush()
}
