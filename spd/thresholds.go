package spd

import "fmt"

// Thresholds are the sp-hash thresholds, XFRM's hthresh4 and hthresh6: a
// policy whose local prefix is at least the family's Local bits long and
// whose remote prefix is at least its Remote bits long is hashed on those
// high-order bits; the others stay in the priority-ordered list.
//
// The zero value hashes every policy on its direction and family alone,
// which puts each direction's policies in one bucket; [DefaultThresholds]
// hashes only host-to-host policies, as the kernel does by default.
type Thresholds struct {
	V4Local, V4Remote uint8 // 0..32
	V6Local, V6Remote uint8 // 0..128
}

// DefaultThresholds are the kernel's: 32 and 32 for IPv4, 128 and 128 for
// IPv6.
func DefaultThresholds() Thresholds { return Thresholds{32, 32, 128, 128} }

func (t Thresholds) String() string {
	return fmt.Sprintf("sp-hash-ipv4 local %d remote %d sp-hash-ipv6 local %d remote %d",
		t.V4Local, t.V4Remote, t.V6Local, t.V6Remote)
}

func (t Thresholds) validate() error {
	if t.V4Local > 32 || t.V4Remote > 32 || t.V6Local > 128 || t.V6Remote > 128 {
		return fmt.Errorf("%v: %w", t, ErrThresholds)
	}
	return nil
}

// bits are the thresholds of family fam.
func (t Thresholds) bits(fam uint8) (local, remote uint8) {
	if fam == fam4 {
		return t.V4Local, t.V4Remote
	}
	return t.V6Local, t.V6Remote
}
