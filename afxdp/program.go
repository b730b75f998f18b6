package afxdp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Side says which of the gateway's interfaces a program serves.
type Side int

const (
	// Unprotected is the side towards the other gateways: ESP and ESP in
	// UDP go to the sockets, IKE and the rest for the gateway to the
	// kernel.
	Unprotected Side = iota
	// Protected is the side towards the hosts the gateway protects:
	// transit traffic goes to the sockets, traffic for the gateway to the
	// kernel.
	Protected
)

func (s Side) String() string {
	switch s {
	case Unprotected:
		return "unprotected"
	case Protected:
		return "protected"
	}
	return fmt.Sprintf("Side(%d)", int(s))
}

// AttachMode is how an XDP program got attached.
type AttachMode int

const (
	// AttachNative runs the program in the driver.
	AttachNative AttachMode = iota + 1
	// AttachGeneric runs it on the generic (skb) path, for drivers without
	// XDP support; it costs an skb per packet.
	AttachGeneric
)

func (m AttachMode) String() string {
	switch m {
	case AttachNative:
		return "native"
	case AttachGeneric:
		return "generic"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// programLicense: the program calls no GPL-only helper; the string only
// needs to be one the kernel accepts.
const programLicense = "Dual MIT/GPL"

// ProgramConfig sets up a Program.
type ProgramConfig struct {
	Side Side
	// MaxQueues is the size of the queue-to-socket map; 0 means 256. Queue
	// indices at or above it always pass to the kernel.
	MaxQueues int
	// MaxAddrs bounds each of the own-address maps (IPv4, IPv6); 0 means 64.
	MaxAddrs int
	// Mode forces an attach mode; 0 tries native, then generic.
	Mode AttachMode
}

// Program is the XDP program of one side with its maps, for one device:
// the queue-to-socket map is keyed by queue index, so a Program is
// attached to one device only. The gateway's own addresses and the sockets
// can be changed while it runs; changes apply to the next packet.
type Program struct {
	side  Side
	mode  AttachMode
	coll  *ebpf.Collection
	prog  *ebpf.Program
	xsks  *ebpf.Map
	own4  *ebpf.Map
	own6  *ebpf.Map
	maxQ  int
	cfg   ProgramConfig
	mu    sync.Mutex // guards link, ifindex
	link  link.Link
	ifidx int
}

// NewProgram builds and loads the program for cfg.Side and creates its
// maps. Attach it to a device with Attach; Close unloads it.
func NewProgram(cfg ProgramConfig) (*Program, error) {
	if cfg.MaxQueues == 0 {
		cfg.MaxQueues = 256
	}
	if cfg.MaxAddrs == 0 {
		cfg.MaxAddrs = 64
	}
	if cfg.Side != Unprotected && cfg.Side != Protected || cfg.MaxQueues < 1 || cfg.MaxAddrs < 1 {
		return nil, fmt.Errorf("program config %+v: %w", cfg, ErrConfig)
	}
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			mapXSKs: {Name: mapXSKs, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(cfg.MaxQueues)},
			mapOwn4: {Name: mapOwn4, Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: uint32(cfg.MaxAddrs)},
			mapOwn6: {Name: mapOwn6, Type: ebpf.Hash, KeySize: 16, ValueSize: 1, MaxEntries: uint32(cfg.MaxAddrs)},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"espx_xdp": {
				Name:         "espx_" + cfg.Side.String()[:4],
				Type:         ebpf.XDP,
				License:      programLicense,
				Instructions: programInstructions(cfg.Side),
			},
		},
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load %s XDP program: %+v", cfg.Side, ve)
		}
		return nil, fmt.Errorf("load %s XDP program: %w", cfg.Side, err)
	}
	return &Program{
		side: cfg.Side,
		coll: coll,
		prog: coll.Programs["espx_xdp"],
		xsks: coll.Maps[mapXSKs],
		own4: coll.Maps[mapOwn4],
		own6: coll.Maps[mapOwn6],
		maxQ: cfg.MaxQueues,
		cfg:  cfg,
	}, nil
}

// Side is the side the program serves.
func (p *Program) Side() Side { return p.side }

// EBPF is the loaded program, for tests that run it with BPF_PROG_RUN.
func (p *Program) EBPF() *ebpf.Program { return p.prog }

// Attach attaches the program to device ifindex through a bpf link, so
// that the kernel detaches it when the process exits, however it exits.
// It tries the driver's native XDP first and falls back to generic XDP,
// and returns which it got. Attach looks the device up in the network
// namespace of the calling thread.
func (p *Program) Attach(ifindex int) (AttachMode, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.coll == nil {
		return 0, fmt.Errorf("attach XDP: %w", ErrClosed)
	}
	if p.link != nil {
		return 0, fmt.Errorf("attach XDP to ifindex %d: already attached to %d: %w", ifindex, p.ifidx, ErrConfig)
	}
	modes := []AttachMode{AttachNative, AttachGeneric}
	if p.cfg.Mode != 0 {
		modes = []AttachMode{p.cfg.Mode}
	}
	var errs []error
	for _, m := range modes {
		flags := link.XDPDriverMode
		if m == AttachGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: flags})
		if err == nil {
			p.link, p.ifidx, p.mode = l, ifindex, m
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
	}
	return 0, fmt.Errorf("attach XDP to ifindex %d: %w", ifindex, errors.Join(errs...))
}

// Mode is how the program is attached, 0 if it is not.
func (p *Program) Mode() AttachMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Detach takes the program off its device; the maps stay, and Attach may
// be called again.
func (p *Program) Detach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.link == nil {
		return nil
	}
	err := p.link.Close()
	p.link, p.ifidx, p.mode = nil, 0, 0
	if err != nil {
		return fmt.Errorf("detach XDP: %w", err)
	}
	return nil
}

// SetSocket sends the packets of s's queue to s from the next packet on.
// s must be bound to the device the program is attached to.
func (p *Program) SetSocket(s *Socket) error {
	q := s.Queue()
	if q < 0 || q >= p.maxQ {
		return fmt.Errorf("socket of queue %d: map holds %d queues: %w", q, p.maxQ, ErrConfig)
	}
	if err := p.xsks.Put(uint32(q), uint32(s.FD())); err != nil {
		return fmt.Errorf("set socket of queue %d: %w", q, err)
	}
	return nil
}

// ClearSocket sends queue's packets to the kernel again. Closing a socket
// clears it from the map too.
func (p *Program) ClearSocket(queue int) error {
	if queue < 0 || queue >= p.maxQ {
		return fmt.Errorf("clear queue %d: %w", queue, ErrConfig)
	}
	err := p.xsks.Delete(uint32(queue))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("clear socket of queue %d: %w", queue, err)
	}
	return nil
}

// AddAddress makes a an address of the gateway: packets to it go to the
// kernel (on the unprotected side, unless they are ESP).
func (p *Program) AddAddress(a netip.Addr) error {
	m, key, err := p.addrKey(a)
	if err != nil {
		return err
	}
	if err := m.Put(key, uint8(1)); err != nil {
		return fmt.Errorf("add address %s: %w", a, err)
	}
	return nil
}

// DeleteAddress undoes AddAddress.
func (p *Program) DeleteAddress(a netip.Addr) error {
	m, key, err := p.addrKey(a)
	if err != nil {
		return err
	}
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete address %s: %w", a, err)
	}
	return nil
}

func (p *Program) addrKey(a netip.Addr) (*ebpf.Map, []byte, error) {
	a = a.Unmap()
	switch {
	case a.Is4():
		b := a.As4()
		return p.own4, b[:], nil
	case a.Is6():
		b := a.As16()
		return p.own6, b[:], nil
	}
	return nil, nil, fmt.Errorf("address %v: %w", a, ErrConfig)
}

// Close detaches the program and unloads it with its maps.
func (p *Program) Close() error {
	err := p.Detach()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.coll != nil {
		p.coll.Close()
		p.coll = nil
	}
	return err
}
