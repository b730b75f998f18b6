package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// procCPU is a process's user plus system time in seconds, all its threads
// included (/proc/PID/stat of the thread group leader).
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces: count from after it.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64) // field 14, utime
	k, _ := strconv.ParseUint(f[12], 10, 64) // field 15, stime
	return float64(u+k) / clockTicks
}

// cpuTimes are /proc/stat's per-CPU busy and total times, in ticks.
type cpuTimes struct {
	busy, total []uint64
}

func readCPUTimes() cpuTimes {
	var t cpuTimes
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		var sum, idle uint64
		for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
			n, _ := strconv.ParseUint(v, 10, 64)
			sum += n
			if i == 3 || i == 4 {
				idle += n
			}
		}
		t.busy = append(t.busy, sum-idle)
		t.total = append(t.total, sum)
	}
	return t
}

// busySince is each CPU's busy fraction since t0.
func (t cpuTimes) busySince(t0 cpuTimes) []float64 {
	out := make([]float64, min(len(t.busy), len(t0.busy)))
	for i := range out {
		if d := t.total[i] - t0.total[i]; d > 0 {
			out[i] = float64(t.busy[i]-t0.busy[i]) / float64(d)
		}
	}
	return out
}

// allBusySince is the busy fraction of all CPUs together since t0.
func (t cpuTimes) allBusySince(t0 cpuTimes) float64 {
	var b, d uint64
	for i := range min(len(t.busy), len(t0.busy)) {
		b += t.busy[i] - t0.busy[i]
		d += t.total[i] - t0.total[i]
	}
	if d == 0 {
		return 0
	}
	return float64(b) / float64(d)
}

func allCPUs() []int {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}

// cpuList writes cpus for taskset -c.
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// pinSelf sets the CPU affinity of every thread of this process; threads
// created later inherit it from the thread that creates them. Two passes
// catch a thread created during the first.
func pinSelf(cpus []int) error {
	var set unix.CPUSet
	set.Zero()
	for _, c := range cpus {
		set.Set(c)
	}
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d to CPUs %v: %w", tid, cpus, err)
			}
		}
	}
	return nil
}

// udpRcvbufErrors is the UDP RcvbufErrors counter of the network namespace
// that process pid is in (datagrams dropped because a socket's receive
// buffer was full).
func udpRcvbufErrors(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp", pid))
	if err != nil {
		return 0
	}
	var names []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
