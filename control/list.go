package control

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// IKESAInfo describes an IKE SA for the operator, as `swanctl --list-sas`
// does: never its keys.
type IKESAInfo struct {
	Name          string
	State         string
	Initiator     bool
	SPIi, SPIr    uint64
	Local, Remote netip.AddrPort
	NATLocal      bool // we are behind a NAT (or encapsulate as if)
	NATRemote     bool
	Suite         string
	LastHeard     time.Time
	Established   time.Time
	Children      []ChildInfo
}

// ChildInfo describes a child SA of an IKE SA.
type ChildInfo struct {
	// Name is the connection the child SA belongs to, which may not be
	// the IKE SA's when a peer has several.
	Name              string
	InSPI, OutSPI     uint32
	Proposal          string
	LocalTS, RemoteTS []string
}

// List describes the daemon's IKE SAs, by connection name and SPI.
func (d *Daemon) List() []IKESAInfo {
	sas := d.sas.all()
	out := make([]IKESAInfo, 0, len(sas))
	for _, sa := range sas {
		sa.mu.Lock()
		i := IKESAInfo{
			Name: sa.cfg.Name, State: sa.state.String(), Initiator: sa.initiator,
			SPIi: sa.spiI, SPIr: sa.spiR, Local: sa.local, Remote: sa.remote,
			NATLocal: sa.natLocal, NATRemote: sa.natRemote, LastHeard: sa.lastHeard, Established: sa.upSince,
		}
		if sa.keys != nil {
			i.Suite = sa.suite.String()
		}
		for _, c := range sa.children {
			i.Children = append(i.Children, ChildInfo{
				Name: c.cfg.Name, InSPI: c.inSPI, OutSPI: c.outSPI, Proposal: c.prop.String(),
				LocalTS: tsStrings(c.lts), RemoteTS: tsStrings(c.rts),
			})
		}
		sa.mu.Unlock()
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b IKESAInfo) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.SPIi, b.SPIi)
	})
	return out
}

// tsStrings writes selectors as prefixes or ranges, with protocol and
// ports when they narrow anything.
func tsStrings(ts []TrafficSelector) []string {
	var out []string
	for _, t := range ts {
		s := t.Start.String() + "-" + t.End.String()
		for bits := 0; bits <= t.Start.BitLen(); bits++ {
			if p := netip.PrefixFrom(t.Start, bits).Masked(); p.Addr() == t.Start && lastAddr(p) == t.End {
				s = p.String()
				break
			}
		}
		if t.IPProto != 0 {
			s += fmt.Sprintf("[%d", t.IPProto)
			if t.StartPort != 0 || t.EndPort != 0xffff {
				s += fmt.Sprintf("/%d-%d", t.StartPort, t.EndPort)
			}
			s += "]"
		}
		out = append(out, s)
	}
	return out
}
