package dataplane

// Frame is a packet in a buffer with room around it: the packet is
// Buf[Off:Off+Len], Buf[:Off] is headroom and Buf[Off+Len:] tailroom. In the
// workers Buf is a UMEM chunk; encapsulation grows the packet into both,
// decapsulation shrinks it in place. Nothing is copied to another buffer.
type Frame struct {
	Buf []byte
	Off int
	Len int
}

// Data is the packet.
func (f *Frame) Data() []byte { return f.Buf[f.Off : f.Off+f.Len] }

// Headroom is the free space before the packet.
func (f *Frame) Headroom() int { return f.Off }

// Tailroom is the free space after the packet.
func (f *Frame) Tailroom() int { return len(f.Buf) - f.Off - f.Len }
