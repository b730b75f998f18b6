package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/espx/espx/crypto"
	"github.com/espx/espx/dataplane"
	"github.com/espx/espx/spd"
)

// The espx mode: the DUT is espx's data plane, one dataplane.Worker as
// espxd runs it, in place of the l2fwd loop. The gateway's protected side
// is the DUT's end of the first veth pair, where the generator's frames
// arrive: plain IPv4 UDP between two hosts, transit traffic that the
// protected side's XDP program hands to the socket. One protect policy
// covers them, with one outbound tunnel-mode SA, AES-GCM-128, no UDP
// encapsulation. The worker encrypts each packet in place, in its UMEM
// frame, and sends it out of its unprotected side, the DUT's end of the
// second pair, on a second socket sharing the UMEM; a tcx program on the
// generator's end counts the ESP frames (espSinkProgram). Before the
// measurement, checkESP captures some of them and decrypts them with the
// SA's inbound half.
//
//	198.51.100.10 ─▶ gen ── dut [protected]  espx  [unprotected] esp ── sink
//	  to 203.0.113.20           198.51.100.1         192.0.2.1 ─▶ 192.0.2.2 (ESP)
//
// The worker's next hop for the tunnel's far end comes from a static
// Router (staticRouter): no kernel routes, neighbours or addresses.
var (
	espxHostA   = netip.MustParseAddr("198.51.100.10") // inner source, behind the protected side
	espxHostB   = netip.MustParseAddr("203.0.113.20")  // inner destination, behind the peer
	espxGwProt  = netip.MustParseAddr("198.51.100.1")  // the DUT's own address, protected side
	espxGwOuter = netip.MustParseAddr("192.0.2.1")     // the DUT's own address, unprotected side
	espxPeer    = netip.MustParseAddr("192.0.2.2")     // the tunnel's far end
	espxNetA    = netip.MustParsePrefix("198.51.100.0/24")
	espxNetB    = netip.MustParsePrefix("203.0.113.0/24")
)

const (
	// maxEspxSize is the largest -size whose ESP packet fits the
	// unprotected link's MTU of 1500: 1446 bytes of inner packet, with
	// 20 of outer header, 8 of ESP header, 8 of IV, 2 of trailer and 16
	// of ICV.
	maxEspxSize = 1446 + ethHdrLen + 4

	espxSPI   = 0x0e5b0001
	espxReqID = 1
	// The generator's UDP ports.
	espxSrcPort, espxDstPort = 1024, 9
)

// espxSA is the tunnel's SA, outbound; with Inbound set the same
// parameters decrypt what it sends.
func espxSA() dataplane.SA {
	key := make([]byte, 20) // AES-128 key and 4-byte salt (RFC 4106)
	for i := range key {
		key[i] = byte(0xa0 + i)
	}
	return dataplane.SA{SAConfig: dataplane.SAConfig{
		SPI: espxSPI, ReqID: espxReqID, Mode: dataplane.ModeTunnel,
		Transform: crypto.Config{Encr: crypto.ENCR_AES_GCM_16, EncrKey: key},
		Src:       espxGwOuter, Dst: espxPeer,
	}}
}

// newEspxDataplane is the gateway's configuration: traffic from the
// protected network to the far one goes through the SA; nothing else
// passes.
func newEspxDataplane() (*dataplane.Dataplane, error) {
	dp, err := dataplane.New(dataplane.Config{})
	if err != nil {
		return nil, err
	}
	if _, err := dp.AddPolicy(spd.Policy{Dir: spd.DirOut, Selector: spd.Selector{Local: espxNetA, Remote: espxNetB},
		Priority: 100, Action: spd.Protect, SA: espxReqID}); err != nil {
		return nil, fmt.Errorf("add policy: %w", err)
	}
	if err := dp.AddSA(espxSA()); err != nil {
		return nil, fmt.Errorf("add SA: %w", err)
	}
	return dp, nil
}

// espFrameLen is the length (without FCS) of the ESP frame the worker
// makes of a generated frame of size bytes on the wire.
func espFrameLen(size int) (int, error) {
	sa, err := dataplane.NewOutboundSA(espxSA().SAConfig)
	if err != nil {
		return 0, err
	}
	return ethHdrLen + sa.OuterLen(size-4-ethHdrLen), nil
}

// staticRouter is the worker's Router: the tunnel's far end is on the
// unprotected link, at the generator side's MAC; nothing else is routed.
// It neither locks nor allocates.
type staticRouter struct {
	peer netip.Addr
	nh   dataplane.NextHop
	// src is the gateway's address on each side, by ifindex.
	src map[int]netip.Addr
}

func newStaticRouter(t *topology) *staticRouter {
	return &staticRouter{
		peer: espxPeer,
		nh:   dataplane.NextHop{Ifindex: t.espIdx, Addr: espxPeer, SrcMAC: t.espMAC, DstMAC: t.sinkMAC, MTU: 1500},
		src:  map[int]netip.Addr{t.dutIdx: espxGwProt, t.espIdx: espxGwOuter},
	}
}

func (r *staticRouter) Route(dst netip.Addr, nh *dataplane.NextHop) dataplane.RouteResult {
	if dst != r.peer {
		return dataplane.RouteNone
	}
	*nh = r.nh
	return dataplane.RouteOK
}

func (r *staticRouter) Resolve(int, netip.Addr) {}

func (r *staticRouter) Source(ifindex int, v6 bool) netip.Addr {
	if v6 {
		return netip.Addr{}
	}
	return r.src[ifindex]
}

const (
	ethHdrLen = 14
	ipv4Len   = 20
	udpLen    = 8
	protoUDP  = 17
	protoESP  = 50
)

// buildUDPFrame makes espx's test frame: Ethernet, IPv4 from espxHostA
// to espxHostB (TTL 64, DF clear), UDP with a zero payload and no
// checksum, size bytes on the wire (size-4 without the FCS).
func buildUDPFrame(size int, dst, src [6]byte) []byte {
	frame := make([]byte, size-4)
	copy(frame, dst[:])
	copy(frame[6:], src[:])
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	h := frame[ethHdrLen : ethHdrLen+ipv4Len]
	h[0], h[8], h[9] = 0x45, 64, protoUDP
	binary.BigEndian.PutUint16(h[2:], uint16(len(frame)-ethHdrLen))
	a, b := espxHostA.As4(), espxHostB.As4()
	copy(h[12:], a[:])
	copy(h[16:], b[:])
	binary.BigEndian.PutUint16(h[10:], ipv4Checksum(h))
	u := frame[ethHdrLen+ipv4Len:]
	binary.BigEndian.PutUint16(u[0:], espxSrcPort)
	binary.BigEndian.PutUint16(u[2:], espxDstPort)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	return frame
}

// Slots of the ESP sink's per-CPU counter map.
const (
	espGood = 0 // the expected ESP frames
	espBad  = 1 // anything else
)

// espSinkProgram is the tcx ingress program on the sink device: it counts
// in slot espGood of counter the frames that are IPv4 ESP with the
// tunnel's SPI and exactly frameLen bytes long, and every other frame in
// slot espBad, and drops them all. It reads no more of a frame than the
// l2fwd sink's loads and compares cost, so that the two modes' sinks
// load the worker's CPU alike.
func espSinkProgram(counter *ebpf.Map, frameLen int) asm.Instructions {
	const (
		skbLen     = 0  // struct __sk_buff.len: the whole frame at tc ingress
		skbData    = 76 // .data
		skbDataEnd = 80 // .data_end
		spiOff     = ethHdrLen + ipv4Len
	)
	var spi [4]byte
	binary.BigEndian.PutUint32(spi[:], espxSPI)
	return asm.Instructions{
		asm.Mov.Imm(asm.R6, espBad),
		asm.LoadMem(asm.R2, asm.R1, skbLen, asm.Word),
		asm.JNE.Imm32(asm.R2, int32(frameLen), "count"),
		asm.LoadMem(asm.R2, asm.R1, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, spiOff+4),
		asm.JGT.Reg(asm.R4, asm.R3, "count"),
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JNE.Imm32(asm.R4, int32(binary.NativeEndian.Uint16([]byte{0x08, 0x00})), "count"),
		asm.LoadMem(asm.R4, asm.R2, ethHdrLen+9, asm.Byte),
		asm.JNE.Imm32(asm.R4, protoESP, "count"),
		asm.LoadMem(asm.R4, asm.R2, spiOff, asm.Word),
		asm.JNE.Imm32(asm.R4, int32(binary.NativeEndian.Uint32(spi[:])), "count"),
		asm.Mov.Imm(asm.R6, espGood),
		asm.StoreMem(asm.R10, -4, asm.R6, asm.Word).WithSymbol("count"),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("out"),
		asm.Return(),
	}
}

// espCounts reads the ESP sink's two counters, summed over the CPUs.
func (b *bench) espCounts() (good, bad uint64) {
	var vals []uint64
	if err := b.espSink.Lookup(uint32(espGood), &vals); err == nil {
		for _, v := range vals {
			good += v
		}
	}
	if err := b.espSink.Lookup(uint32(espBad), &vals); err == nil {
		for _, v := range vals {
			bad += v
		}
	}
	return good, bad
}

// checkSamples is how many frames checkESP sends and captures.
const checkSamples = 256

// checkESP shows that what espx sends is real ESP: with the worker
// running, it sends checkSamples frames, captures what arrives on the
// sink device with a packet socket (taps see frames before tcx drops
// them), and checks every captured frame: Ethernet addresses, length,
// outer header, SPI, sequence numbers in order, and decryption with the
// SA's inbound half (dataplane.Engine.Decap: ICV, replay window, padding)
// back to the packet sent, its TTL lowered by one as a router's. It also
// checks that the sink program counted them as ESP. It returns a line
// for the report.
func (b *bench) checkESP() (string, error) {
	t := b.topo
	inSA := espxSA()
	inSA.Inbound = true
	inSA.ReplayWindow = 64
	in, err := dataplane.NewInboundSA(inSA.SAConfig)
	if err != nil {
		return "", err
	}
	good0, bad0 := b.espCounts()
	var frames [][]byte
	err = t.genThread.do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: t.sinkIdx}); err != nil {
			return fmt.Errorf("bind packet socket to %s: %w", t.sinkDev, err)
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
		if err := b.genUDP.sched.Put(uint32(0), paceState{}); err != nil {
			return err
		}
		if errno := b.genUDP.send(checkSamples, 32); errno != 0 {
			return fmt.Errorf("generator: %w", errno)
		}
		buf := make([]byte, 4096)
		for len(frames) < checkSamples {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					return nil // timed out: nothing more came
				}
				return fmt.Errorf("capture: %w", err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			frames = append(frames, append([]byte(nil), buf[:n]...))
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	// The drain of a trial waits for the counts to settle; so does this.
	time.Sleep(100 * time.Millisecond)
	good1, bad1 := b.espCounts()
	if len(frames) == 0 {
		return "", fmt.Errorf("ESP check: nothing arrived on %s of %d frames sent", t.sinkDev, checkSamples)
	}

	want := bytes.Clone(b.genUDP.frame[ethHdrLen:])
	want[8]-- // TTL
	binary.BigEndian.PutUint16(want[10:], 0)
	binary.BigEndian.PutUint16(want[10:], ipv4Checksum(want[:ipv4Len]))
	wantLen, err := espFrameLen(b.opts.size)
	if err != nil {
		return "", err
	}
	eng := dataplane.NewEngine(nil)
	buf := make([]byte, 2048)
	var first, last uint32
	for i, f := range frames {
		switch {
		case len(f) != wantLen:
			return "", fmt.Errorf("ESP check: frame %d is %d bytes, want %d", i, len(f), wantLen)
		case !bytes.Equal(f[0:6], t.sinkMAC[:]) || !bytes.Equal(f[6:12], t.espMAC[:]):
			return "", fmt.Errorf("ESP check: frame %d from %x to %x, want %x to %x", i, f[6:12], f[0:6], t.espMAC, t.sinkMAC)
		case binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[ethHdrLen+9] != protoESP:
			return "", fmt.Errorf("ESP check: frame %d is not IPv4 ESP: %x", i, f[:ethHdrLen+ipv4Len])
		case ipv4Checksum(f[ethHdrLen:ethHdrLen+ipv4Len]) != 0:
			return "", fmt.Errorf("ESP check: frame %d: bad outer header checksum", i)
		}
		ip := f[ethHdrLen:]
		if s, d := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); s != espxGwOuter || d != espxPeer {
			return "", fmt.Errorf("ESP check: frame %d from %v to %v, want %v to %v", i, s, d, espxGwOuter, espxPeer)
		}
		esp := ip[ipv4Len:]
		if spi := binary.BigEndian.Uint32(esp); spi != espxSPI {
			return "", fmt.Errorf("ESP check: frame %d: SPI %#x, want %#x", i, spi, espxSPI)
		}
		seq := binary.BigEndian.Uint32(esp[4:])
		if i == 0 {
			first = seq
		} else if seq <= last {
			return "", fmt.Errorf("ESP check: frame %d: sequence number %d after %d", i, seq, last)
		}
		last = seq
		fr := dataplane.Frame{Buf: buf, Off: 256, Len: len(ip)}
		copy(buf[fr.Off:], ip)
		if d := eng.Decap(in, &fr); d != dataplane.DropNone {
			return "", fmt.Errorf("ESP check: frame %d (seq %d) does not decrypt: %v", i, seq, d)
		}
		if !bytes.Equal(fr.Data(), want) {
			return "", fmt.Errorf("ESP check: frame %d decrypts to\n%x, want\n%x", i, fr.Data(), want)
		}
	}
	if good1-good0 != uint64(len(frames)) || bad1 != bad0 {
		return "", fmt.Errorf("ESP check: captured %d ESP frames, but the sink counted %d ESP and %d others", len(frames), good1-good0, bad1-bad0)
	}
	return fmt.Sprintf("ESP check: %d of %d frames sent came out of %s, all %d bytes (%d on the wire), IPv4 ESP %v > %v SPI %#x, sequence numbers %d..%d rising, each decrypting (AES-GCM-128, ICV and replay window checked) to the packet sent with its TTL lowered; the sink counted them all as ESP",
		len(frames), checkSamples, t.espDev, wantLen, wantLen+4, espxGwOuter, espxPeer, uint32(espxSPI), first, last), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ipv4Checksum is the Internet checksum of an IPv4 header: the value to
// store in a header whose checksum field is zero, and zero for a header
// with a correct checksum.
func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
