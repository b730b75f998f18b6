package main

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// The generator is the kernel: BPF_PROG_RUN in live-frame mode runs an XDP
// program that returns XDP_TX on a frame "received" on the generator's
// veth, so every run of it sends a frame to the DUT's veth without an skb.
// Three things make it a source one can trust at a chosen rate:
//
//   - The program paces itself: it spins (bpf_loop on bpf_ktime_get_ns)
//     until the frame is due, so frames leave evenly spaced at the rate set
//     in a map, not in bursts. When it falls behind (an interrupt, the
//     softirqs that run between its batches) it catches up at full speed,
//     but by no more than catchUp frames: beyond that it gives the backlog
//     up, and counts that, rather than overflow veth's 256-frame ring.
//   - Each BPF_PROG_RUN call sets up and tears down a page pool for its
//     frames. With the DUT's NAPI on another CPU, frames are still in
//     flight at teardown, and the kernel then defers the teardown to a
//     workqueue on the generator's CPU: tens of thousands of short calls a
//     second kept a kworker there near 100 % busy. Calls therefore last
//     about callLength each.
//   - A program that is not in the kernel's XDP dispatcher is patched in
//     and out around every call with a repeat count (text patching and IPIs
//     to every CPU, 0.5-1.5 ms a call here). Attached to an idle veth (the
//     holder), the program stays in the dispatcher.
//
// The syscall is made by hand with a prebuilt attribute block, through
// RawSyscall: no allocation, and the thread keeps its P.
const (
	catchUp    = 128
	callLength = 100 * time.Millisecond
)

// progRunAttr is the BPF_PROG_TEST_RUN member of union bpf_attr.
type progRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// xdpMD is struct xdp_md, the context BPF_PROG_RUN takes for XDP.
type xdpMD struct {
	data, dataEnd, dataMeta, ingressIfindex, rxQueueIndex, egressIfindex uint32
}

// paceState is the generator program's map value.
type paceState struct {
	Next     uint64 // when the next frame is due, bpf_ktime_get_ns; 0: now
	Interval uint64 // ns between frames; 0: as fast as possible
	Slipped  uint64 // times the schedule was given up
	Slack    uint64 // ns the program may fall behind and catch up
}

type generator struct {
	attr  progRunAttr
	frame []byte
	md    *xdpMD
	prog  *ebpf.Program
	sched *ebpf.Map // the program's paceState
}

// newGenerator prepares runs of prog (see genProgram, with its map pace)
// on frame arriving on ifindex.
func newGenerator(prog *ebpf.Program, pace *ebpf.Map, ifindex int, frame []byte) *generator {
	g := &generator{frame: frame, md: &xdpMD{dataEnd: uint32(len(frame)), ingressIfindex: uint32(ifindex)}, prog: prog, sched: pace}
	g.attr = progRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(frame)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&frame[0]))),
		ctxSizeIn:  uint32(unsafe.Sizeof(xdpMD{})),
		ctxIn:      uint64(uintptr(unsafe.Pointer(g.md))),
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
	}
	return g
}

// send runs the program n times, in kernel batches of batch: n frames.
func (g *generator) send(n, batch uint32) unix.Errno {
	g.attr.repeat, g.attr.batchSize = n, batch
	_, _, errno := unix.RawSyscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&g.attr)), unsafe.Sizeof(g.attr))
	runtime.KeepAlive(g.frame)
	runtime.KeepAlive(g.md)
	return errno
}

// paced is what one run of the generator did.
type paced struct {
	sent    uint64        // frames offered
	elapsed time.Duration // from the first frame to the last
	slipped uint64        // times the program gave its schedule up
}

// pace offers rate frames per second (0: as fast as it can) for about d.
// It must run on the generator's thread.
func (g *generator) pace(rate float64, d time.Duration) (paced, error) {
	var p paced
	st := paceState{}
	if rate > 0 {
		st.Interval = uint64(float64(time.Second) / rate)
		st.Slack = catchUp * st.Interval
	}
	if err := g.sched.Put(uint32(0), st); err != nil {
		return p, fmt.Errorf("generator: set rate: %w", err)
	}
	// The kernel turns softirqs off for each batch; keep a batch to
	// about 20 us of frames so that the CPU's other softirqs are not held
	// up by the pacing.
	batch := uint32(64)
	chunk := uint64(1 << 16)
	if rate > 0 {
		batch = uint32(min(64, max(1, rate*20e-6)))
		chunk = uint64(max(1, rate*callLength.Seconds()))
	}
	start := time.Now()
	for {
		left := d - time.Since(start)
		if left <= 0 {
			break
		}
		n := chunk
		if rate > 0 {
			n = min(n, uint64(max(1, rate*left.Seconds())))
		}
		if errno := g.send(uint32(n), batch); errno != 0 {
			if errno == unix.EINTR {
				return p, fmt.Errorf("generator: %w", errInterrupted)
			}
			return p, fmt.Errorf("generator: BPF_PROG_RUN: %w", errno)
		}
		p.sent += n
	}
	p.elapsed = time.Since(start)
	if err := g.sched.Lookup(uint32(0), &st); err == nil && st.Slipped > 0 {
		p.slipped = st.Slipped - 1 // the first frame always finds itself late
	}
	return p, nil
}

// genProgram returns the generator's XDP program: wait until the frame is
// due by pace's schedule, then XDP_TX.
func genProgram(pace *ebpf.Map) asm.Instructions {
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	// bpf_loop's callback is a subprogram, which needs BTF function info.
	mainFn := &btf.Func{Name: "gen_tx", Linkage: btf.GlobalFunc, Type: &btf.FuncProto{Return: i32,
		Params: []btf.FuncParam{{Name: "ctx", Type: &btf.Pointer{Target: &btf.Struct{Name: "xdp_md"}}}}}}
	spinFn := &btf.Func{Name: "spin", Linkage: btf.StaticFunc, Type: &btf.FuncProto{Return: i32,
		Params: []btf.FuncParam{{Name: "index", Type: u32}, {Name: "due", Type: &btf.Pointer{Target: &btf.Void{}}}}}}
	const maxLoops = 1 << 23 // BPF_MAX_LOOPS
	return asm.Instructions{
		btf.WithFuncMetadata(asm.StoreImm(asm.R10, -4, 0, asm.Word), mainFn),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, pace.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "tx"),
		asm.Mov.Reg(asm.R6, asm.R0),               // r6: the schedule
		asm.LoadMem(asm.R7, asm.R6, 8, asm.DWord), // r7: interval
		asm.JEq.Imm(asm.R7, 0, "tx"),
		asm.FnKtimeGetNs.Call(),
		asm.LoadMem(asm.R8, asm.R6, 0, asm.DWord), // r8: due
		asm.JGE.Reg(asm.R0, asm.R8, "late"),
		// Early: spin until due.
		asm.StoreMem(asm.R10, -16, asm.R8, asm.DWord),
		asm.Mov.Imm(asm.R1, maxLoops),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R2, Src: asm.PseudoFunc, Constant: -1}.WithReference("spin"),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.Ja.Label("advance"),
		// Late: within the slack, catch up; beyond, start again from now.
		asm.Mov.Reg(asm.R1, asm.R0).WithSymbol("late"),
		asm.Sub.Reg(asm.R1, asm.R8),
		asm.LoadMem(asm.R2, asm.R6, 24, asm.DWord),
		asm.JLE.Reg(asm.R1, asm.R2, "advance"),
		asm.StoreMem(asm.R6, 0, asm.R0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, 16, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R6, 16, asm.R1, asm.DWord),
		asm.LoadMem(asm.R8, asm.R6, 0, asm.DWord).WithSymbol("advance"),
		asm.Add.Reg(asm.R8, asm.R7),
		asm.StoreMem(asm.R6, 0, asm.R8, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpTX).WithSymbol("tx"),
		asm.Return(),

		// spin(index, due): stop (1) once bpf_ktime_get_ns() >= *due.
		btf.WithFuncMetadata(asm.Mov.Reg(asm.R6, asm.R2), spinFn).WithSymbol("spin"),
		asm.FnKtimeGetNs.Call(),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord),
		asm.Mov.Imm(asm.R2, 0),
		asm.JLT.Reg(asm.R0, asm.R1, "more"),
		asm.Mov.Imm(asm.R2, 1),
		asm.Mov.Reg(asm.R0, asm.R2).WithSymbol("more"),
		asm.Return(),
	}
}

// buildFrame makes the test frame: Ethernet, IPv4 from 198.51.100.1 to
// 192.0.2.1, ESP with SPI 0x1001, padded to size bytes on the wire
// (size-4 without the FCS).
func buildFrame(size int, dst, src [6]byte) []byte {
	frame := make([]byte, size-4)
	copy(frame, dst[:])
	copy(frame[6:], src[:])
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	h := frame[14:34]
	h[0], h[8], h[9] = 0x45, 64, 50
	binary.BigEndian.PutUint16(h[2:], uint16(len(frame)-14))
	copy(h[12:], []byte{198, 51, 100, 1})
	copy(h[16:], []byte{192, 0, 2, 1})
	binary.BigEndian.PutUint16(h[10:], ipv4Checksum(h))
	binary.BigEndian.PutUint32(frame[34:], 0x1001) // SPI
	binary.BigEndian.PutUint32(frame[38:], 1)      // sequence number
	return frame
}
