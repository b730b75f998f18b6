package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Where the CPU time goes during a trial: each thread of ours by its own
// CPU clock (exact), each CPU by /proc/stat (ticks, 4 ms here), and the
// NET_RX softirqs raised per CPU, which tell where veth's NAPI ran.

// cpuClock is the CPU time of a thread of this process (thread true) or of
// any process, such as a NAPI kernel thread, by the kernel's clock ids
// for them (CPUCLOCK_SCHED, include/linux/posix-timers_types.h).
func cpuClock(id int, thread bool) time.Duration {
	if id <= 0 {
		return 0
	}
	clk := int32(^id)<<3 | 2
	if thread {
		clk |= 4
	}
	var ts unix.Timespec
	if unix.ClockGettime(clk, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// runDelay is how long a thread of this process (thread true) or a
// process has waited on a run queue, runnable but not running
// (/proc/.../schedstat, second field).
func runDelay(id int, thread bool) time.Duration {
	if id <= 0 {
		return 0
	}
	p := "/proc/" + strconv.Itoa(id) + "/schedstat"
	if thread {
		p = "/proc/self/task/" + strconv.Itoa(id) + "/schedstat"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return time.Duration(n)
}

// cpuTimes is one CPU's line of /proc/stat, in ticks.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal uint64
}

func (c cpuTimes) total() uint64 {
	return c.user + c.nice + c.system + c.idle + c.iowait + c.irq + c.softirq + c.steal
}

// cpuSnap is a snapshot of every CPU.
type cpuSnap struct {
	at    time.Time
	cpus  []cpuTimes
	netRx []uint64
}

func snapCPUs() cpuSnap {
	s := cpuSnap{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
				continue
			}
			var v [8]uint64
			for i := range v {
				v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
			}
			s.cpus = append(s.cpus, cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]})
		}
	}
	if b, err := os.ReadFile("/proc/softirqs"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 1 && f[0] == "NET_RX:" {
				for _, x := range f[1:] {
					n, _ := strconv.ParseUint(x, 10, 64)
					s.netRx = append(s.netRx, n)
				}
			}
		}
	}
	return s
}

// cpuUse is what one CPU did between two snapshots, as fractions of the
// time that passed.
type cpuUse struct {
	busy, softirq, steal float64
	netRx                uint64 // NET_RX softirqs raised
}

func cpuDelta(a, b cpuSnap) []cpuUse {
	var out []cpuUse
	for i := range min(len(a.cpus), len(b.cpus)) {
		x, y := a.cpus[i], b.cpus[i]
		tot := float64(y.total() - x.total())
		if tot == 0 {
			tot = 1
		}
		u := cpuUse{
			busy:    1 - float64((y.idle+y.iowait)-(x.idle+x.iowait))/tot,
			softirq: float64(y.softirq-x.softirq) / tot,
			steal:   float64(y.steal-x.steal) / tot,
		}
		if i < len(a.netRx) && i < len(b.netRx) {
			u.netRx = b.netRx[i] - a.netRx[i]
		}
		out = append(out, u)
	}
	return out
}

// taskSnap is the run time of every thread on the host, by TID, from
// /proc/<pid>/task/<tid>/schedstat.
type taskSnap map[int]time.Duration

func snapTasks() taskSnap {
	s := make(taskSnap, 256)
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return s
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		tasks, err := os.ReadDir("/proc/" + p.Name() + "/task")
		if err != nil {
			continue
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + p.Name() + "/task/" + t.Name() + "/schedstat")
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				s[tid] = time.Duration(n)
			}
		}
	}
	return s
}

// othersBetween is the CPU time that threads other than ours used between
// two snapshots, with the busiest of them. ours holds our threads' TIDs.
func othersBetween(a, b taskSnap, ours map[int]bool) (time.Duration, []string) {
	type use struct {
		tid int
		d   time.Duration
	}
	var total time.Duration
	var top []use
	for tid, t := range b {
		if ours[tid] {
			continue
		}
		d := t - a[tid] // a thread born in between counts from zero
		if d <= 0 {
			continue
		}
		total += d
		top = append(top, use{tid, d})
	}
	slices.SortFunc(top, func(x, y use) int { return int(y.d - x.d) })
	var names []string
	for _, u := range top[:min(3, len(top))] {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(u.tid) + "/comm")
		names = append(names, fmt.Sprintf("%s[%d] %v", strings.TrimSpace(string(comm)), u.tid, u.d.Round(100*time.Microsecond)))
	}
	return total, names
}

// ourThreads returns the TIDs of this process's threads.
func ourThreads() map[int]bool {
	m := make(map[int]bool)
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			m[tid] = true
		}
	}
	return m
}
