package afxdp

// Desc describes one packet in the UMEM: Addr is its first byte, counted
// from the start of the UMEM, and Len its length. The layout is the
// kernel's struct xdp_desc, so descriptors are copied to and from the RX
// and TX rings as they are.
//
// In aligned mode, the chunk a packet lives in is Addr rounded down to the
// frame size; the bytes between the chunk start and Addr are headroom, the
// bytes after Addr+Len up to the chunk end tailroom. A worker may move Addr
// and Len anywhere inside the chunk (to add or strip headers in place)
// before it transmits the frame.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// Data is the packet that d describes, a view into the UMEM.
func (u *UMEM) Data(d Desc) []byte {
	return u.area[d.Addr : d.Addr+uint64(d.Len) : d.Addr+uint64(d.Len)]
}

// Chunk returns the whole chunk that d's packet lives in and the packet's
// offset in it: buf[off:off+int(d.Len)] is the packet, buf[:off] headroom.
// This is the shape of dataplane.Frame (Buf, Off, Len).
func (u *UMEM) Chunk(d Desc) (buf []byte, off int) {
	base := d.Addr &^ (u.frameSize - 1)
	return u.area[base : base+u.frameSize : base+u.frameSize], int(d.Addr - base)
}

// Desc builds the descriptor of a packet at off in the chunk that
// chunkAddr points into, length bytes long; the inverse of Chunk after a
// worker grew or shrank the packet in place.
func (u *UMEM) Desc(chunkAddr uint64, off, length int) Desc {
	return Desc{Addr: chunkAddr&^(u.frameSize-1) + uint64(off), Len: uint32(length)}
}

// frameIndex is the number of the chunk addr lies in.
func (u *UMEM) frameIndex(addr uint64) uint64 { return addr >> u.shift }
