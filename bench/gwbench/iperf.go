package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// result is one iperf3 run.
type result struct {
	round       int
	sys         system
	reverse     bool // hostB to hostA
	mbps        float64
	retransmits int
	mss         int        // the client's TCP MSS
	gwCPU       [2]float64 // percent of one CPU, gwA and gwB daemons
	hostBusy    float64    // percent of all CPUs busy during the run
	busyBefore  float64    // the same, over a second before the measurement
	iperfCPU    [2]float64 // iperf3 client and server, percent of one CPU as iperf3 reports them
}

func (r result) direction() string {
	if r.reverse {
		return "hostB->hostA"
	}
	return "hostA->hostB"
}

type iperfJSON struct {
	Start struct {
		MSS int `json:"tcp_mss_default"`
	} `json:"start"`
	End struct {
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes      float64 `json:"bytes"`
			BitsPerSec float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		CPU struct {
			Host   float64 `json:"host_total"`
			Remote float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf runs one iperf3 TCP test between hostA (client) and hostB
// (server), hostA sending unless reverse, and checks that the bytes went
// through the gateways' tunnel.
func (b *bench) iperf(ctx context.Context, tp *topo, gw gateways, reverse bool) (result, error) {
	var srvOut logBuffer
	srv, err := b.background([]string{"ip", "netns", "exec", tp.hostB, "iperf3", "-s", "-1", "-B", hostBAddr}, &srvOut)
	if err != nil {
		return result{}, err
	}
	// -1: the server exits after one test; stopped by PID if it has not.
	defer srv.stop(5 * time.Second)

	encBefore, err := gw.encrypted(ctx)
	if err != nil {
		return result{}, err
	}
	args := []string{"ip", "netns", "exec", tp.hostA, "iperf3", "-c", hostBAddr, "-t", strconv.Itoa(b.opt.seconds),
		"-P", strconv.Itoa(b.opt.streams), "-J", "--connect-timeout", "2000"}
	if reverse {
		args = append(args, "-R")
	}
	var r iperfJSON
	var cpu0, cpu1 [2]uint64
	var host0, host1 cpuTimes
	var start, end time.Time
	for try := 0; ; try++ { // until the server listens
		cpu0, host0, start = procCPU(gw.pids()), readCPUTimes(), time.Now()
		out, err := b.Output(ctx, time.Duration(b.opt.seconds+30)*time.Second, args...)
		cpu1, host1, end = procCPU(gw.pids()), readCPUTimes(), time.Now()
		if ctx.Err() != nil {
			return result{}, ctx.Err()
		}
		r = iperfJSON{}
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
			return result{}, fmt.Errorf("iperf3: %v %v", err, jerr)
		}
		if strings.Contains(r.Error, "Connection refused") && try < 100 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil || r.Error != "" {
			return result{}, fmt.Errorf("iperf3: %v %s", err, r.Error)
		}
		break
	}
	encAfter, err := gw.encrypted(ctx)
	if err != nil {
		return result{}, err
	}
	_, noTunnel := gw.(routing)
	if got := r.End.SumReceived.Bytes; got < 1e6 || (!noTunnel && float64(encAfter-encBefore) < got) {
		return result{}, fmt.Errorf("iperf3 delivered %.0f bytes but the gateways encrypted %d: not through the tunnel", got, encAfter-encBefore)
	}
	res := result{
		reverse:     reverse,
		mbps:        r.End.SumReceived.BitsPerSec / 1e6,
		retransmits: r.End.SumSent.Retransmits,
		mss:         r.Start.MSS,
		hostBusy:    host1.busySince(host0),
		iperfCPU:    [2]float64{r.End.CPU.Host, r.End.CPU.Remote},
	}
	secs := end.Sub(start).Seconds()
	for i := range res.gwCPU {
		if gw.pids()[i] == 0 {
			continue
		}
		res.gwCPU[i] = float64(cpu1[i]-cpu0[i]) / clockTicks / secs * 100
	}
	return res, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// procCPU returns each process's user plus system time in clock ticks,
// all its threads included (/proc/PID/stat of the thread group leader).
func procCPU(pids [2]int) [2]uint64 {
	var t [2]uint64
	for i, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name, field 2, may hold spaces: count from after it.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseUint(f[11], 10, 64) // field 14, utime
			k, _ := strconv.ParseUint(f[12], 10, 64) // field 15, stime
			t[i] = u + k
		}
	}
	return t
}

// cpuTimes is the first line of /proc/stat: all CPUs together.
type cpuTimes struct{ busy, total uint64 }

func readCPUTimes() cpuTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	var t cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// busySince is the percentage of all CPUs busy between then and t.
func (t cpuTimes) busySince(then cpuTimes) float64 {
	if t.total == then.total {
		return 0
	}
	return float64(t.busy-then.busy) / float64(t.total-then.total) * 100
}

// waitIdle waits up to -idle-wait for a second in which the host is at
// most -idle-busy percent busy, and returns the last second's figure. The
// machine may be shared; the figure goes into the report either way.
func (b *bench) waitIdle(ctx context.Context) float64 {
	deadline := time.Now().Add(b.opt.idleWait)
	for {
		t0 := readCPUTimes()
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(time.Second):
		}
		busy := readCPUTimes().busySince(t0)
		if busy <= b.opt.idleBusy || time.Now().After(deadline) {
			return busy
		}
	}
}
