package afxdp

import (
	"encoding/binary"

	"github.com/cilium/ebpf/asm"
)

// The XDP program, written with cilium/ebpf's asm package so that building
// espx needs no clang. It decides per packet between the queue's socket
// (bpf_redirect_map on the XSKMAP, by rx_queue_index, with XDP_PASS as the
// action when the queue has no socket) and the kernel (XDP_PASS).
//
// Unprotected side, in order:
//
//	not IPv4/IPv6 (ARP, VLAN tags, LLDP, ...)         kernel
//	IPv4 multicast or broadcast, IPv6 multicast,
//	IPv6 link-local destination                       kernel
//	ICMPv6 router/neighbour discovery (types 133-137)  kernel
//	IPv4 fragment, IPv6 Fragment header               kernel (the kernel reassembles IKE; ESP fragments are not handled)
//	ESP (protocol 50)                                 socket, whatever the destination
//	UDP to port 500                                   kernel (IKE)
//	UDP to port 4500, first 4 payload bytes zero,
//	or fewer than 4 (NAT-T keepalive)                 kernel (IKE)
//	UDP to port 4500, otherwise                       socket (ESP in UDP)
//	anything else to one of the gateway's addresses   kernel
//	anything else                                     socket
//
// Protected side: the first two groups (and ND) go to the kernel, then
// anything to one of the gateway's addresses, fragments included, goes to
// the kernel and everything else (transit) to the socket.
//
// Not parsed, and so decided by destination address alone: IPv6 extension
// headers other than Fragment (an ESP packet behind a Hop-by-Hop or Routing
// header to the gateway goes to the kernel, which drops it), IPv4 options
// are skipped by IHL. Frames with a VLAN tag go to the kernel: put the XDP
// program on the VLAN's parent only when the NIC strips tags.

// Offsets and values in the headers the program reads.
const (
	xdpMdData         = 0  // struct xdp_md.data
	xdpMdDataEnd      = 4  // .data_end
	xdpMdRxQueueIndex = 16 // .rx_queue_index

	ethLen       = 14
	ethTypeOff   = 12
	ethTypeIPv4  = 0x0800
	ethTypeIPv6  = 0x86dd
	ipv4MinLen   = 20
	ipv4FragOff  = 6
	ipv4ProtoOff = 9
	ipv4DstOff   = 16
	ipv4FragMask = 0x3fff // MF flag and fragment offset
	ipv6Len      = 40
	ipv6NextOff  = 6
	ipv6DstOff   = 24
	udpLen       = 8
	udpDportOff  = 2
	nonESPMarker = 4 // bytes of zero that mark IKE on port 4500

	protoICMPv6   = 58
	protoESP      = 50
	protoUDP      = 17
	protoFragment = 44
	portIKE       = 500
	portNATT      = 4500
	icmp6FirstND  = 133 // router solicitation
	icmp6LastND   = 137 // redirect

	xdpPass = 2
)

// be16 is the value a 16-bit load from packet memory yields for the
// network-order value v, so that comparisons need no byte swap at run
// time.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// Map names, as the program references them.
const (
	mapXSKs = "xsks"
	mapOwn4 = "own_v4"
	mapOwn6 = "own_v6"
)

// programInstructions builds the program for one side.
//
// Registers: R6 ctx, R7 data, R8 data_end, R9 the IP header; they survive
// helper calls. Every packet read is preceded by a comparison with data_end
// that the verifier can follow.
func programInstructions(side Side) asm.Instructions {
	unprot := side == Unprotected
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, xdpMdData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, xdpMdDataEnd, asm.Word),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.Add.Imm(asm.R2, ethLen),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.Mov.Reg(asm.R9, asm.R7),
		asm.Add.Imm(asm.R9, ethLen),
		asm.LoadMem(asm.R3, asm.R7, ethTypeOff, asm.Half),
		asm.JEq.Imm(asm.R3, be16(ethTypeIPv4), "ipv4"),
		asm.JEq.Imm(asm.R3, be16(ethTypeIPv6), "ipv6"),
		asm.Ja.Label("pass"),

		// IPv4.
		asm.Mov.Reg(asm.R2, asm.R9).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R2, ipv4MinLen),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R9, 0, asm.Byte),
		asm.Mov.Reg(asm.R4, asm.R3),
		asm.RSh.Imm(asm.R4, 4),
		asm.JNE.Imm(asm.R4, 4, "pass"),
		asm.And.Imm(asm.R3, 0x0f),
		asm.JLT.Imm(asm.R3, 5, "pass"),
		asm.LSh.Imm(asm.R3, 2), // R3: header length, 20..60
		asm.LoadMem(asm.R4, asm.R9, ipv4DstOff, asm.Byte),
		asm.JGE.Imm(asm.R4, 224, "pass"), // multicast, reserved, broadcast
	}
	if unprot {
		ins = append(ins,
			asm.LoadMem(asm.R4, asm.R9, ipv4FragOff, asm.Half),
			asm.And.Imm(asm.R4, be16(ipv4FragMask)),
			asm.JNE.Imm(asm.R4, 0, "pass"),
			asm.LoadMem(asm.R4, asm.R9, ipv4ProtoOff, asm.Byte),
			asm.JEq.Imm(asm.R4, protoESP, "redirect"),
			asm.JNE.Imm(asm.R4, protoUDP, "own4"),
			asm.Mov.Reg(asm.R2, asm.R9),
			asm.Add.Reg(asm.R2, asm.R3), // R2: UDP header
		)
		ins = append(ins, udpRules("own4")...)
	}
	ins = append(ins,
		asm.Mov.Reg(asm.R2, asm.R9).WithSymbol("own4"),
		asm.Add.Imm(asm.R2, ipv4DstOff),
		asm.LoadMapPtr(asm.R1, 0).WithReference(mapOwn4),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.Ja.Label("redirect"),

		// IPv6.
		asm.Mov.Reg(asm.R2, asm.R9).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R2, ipv6Len),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R9, 0, asm.Byte),
		asm.RSh.Imm(asm.R3, 4),
		asm.JNE.Imm(asm.R3, 6, "pass"),
		asm.LoadMem(asm.R4, asm.R9, ipv6DstOff, asm.Byte),
		asm.JEq.Imm(asm.R4, 0xff, "pass"), // multicast
		asm.LoadMem(asm.R3, asm.R9, ipv6DstOff+1, asm.Byte),
		asm.And.Imm(asm.R3, 0xc0),
		asm.JNE.Imm(asm.R4, 0xfe, "v6notll"),
		asm.JEq.Imm(asm.R3, 0x80, "pass"), // fe80::/10
		asm.LoadMem(asm.R4, asm.R9, ipv6NextOff, asm.Byte).WithSymbol("v6notll"),
		asm.JEq.Imm(asm.R4, protoICMPv6, "icmp6"),
	)
	if unprot {
		ins = append(ins,
			asm.JEq.Imm(asm.R4, protoESP, "redirect"),
			asm.JEq.Imm(asm.R4, protoFragment, "pass"),
			asm.JNE.Imm(asm.R4, protoUDP, "own6"),
			asm.Mov.Reg(asm.R2, asm.R9),
			asm.Add.Imm(asm.R2, ipv6Len),
		)
		ins = append(ins, udpRules("own6")...)
	}
	ins = append(ins,
		asm.Mov.Reg(asm.R2, asm.R9).WithSymbol("own6"),
		asm.Add.Imm(asm.R2, ipv6DstOff),
		asm.LoadMapPtr(asm.R1, 0).WithReference(mapOwn6),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.Ja.Label("redirect"),

		asm.Mov.Reg(asm.R2, asm.R9).WithSymbol("icmp6"),
		asm.Add.Imm(asm.R2, ipv6Len+1),
		asm.JGT.Reg(asm.R2, asm.R8, "pass"),
		asm.LoadMem(asm.R4, asm.R9, ipv6Len, asm.Byte),
		asm.JLT.Imm(asm.R4, icmp6FirstND, "own6"),
		asm.JGT.Imm(asm.R4, icmp6LastND, "own6"),
		asm.Ja.Label("pass"),

		// To the queue's socket, or to the kernel if it has none.
		asm.LoadMapPtr(asm.R1, 0).WithReference(mapXSKs).WithSymbol("redirect"),
		asm.LoadMem(asm.R2, asm.R6, xdpMdRxQueueIndex, asm.Word),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	return ins
}

// udpRules classifies the UDP datagram whose header R2 points to on the
// unprotected side: IKE to the kernel, ESP in UDP to the socket, and other
// UDP on to the address check at label other. The labels are made unique
// per address family.
func udpRules(other string) asm.Instructions {
	natt := "natt_" + other
	return asm.Instructions{
		asm.Mov.Reg(asm.R5, asm.R2),
		asm.Add.Imm(asm.R5, udpLen),
		asm.JGT.Reg(asm.R5, asm.R8, other),
		asm.LoadMem(asm.R4, asm.R2, udpDportOff, asm.Half),
		asm.JEq.Imm(asm.R4, be16(portIKE), "pass"),
		asm.JEq.Imm(asm.R4, be16(portNATT), natt),
		asm.Ja.Label(other),
		asm.Mov.Reg(asm.R5, asm.R2).WithSymbol(natt),
		asm.Add.Imm(asm.R5, udpLen+nonESPMarker),
		asm.JGT.Reg(asm.R5, asm.R8, "pass"), // keepalive or runt: IKE's business
		asm.LoadMem(asm.R4, asm.R2, udpLen, asm.Word),
		asm.JEq.Imm(asm.R4, 0, "pass"),
		asm.Ja.Label("redirect"),
	}
}
