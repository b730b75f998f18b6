package spd_test

import (
	"fmt"
	"net/netip"

	"github.com/espx/espx/spd"
)

// The thresholds of the ip-xfrm(8) example, a site-to-site policy that
// they hash, a broad bypass policy that stays in the list, and the lookups
// of a worker.
func Example() {
	db, err := spd.New(spd.Thresholds{V4Local: 16, V4Remote: 24, V6Local: 56, V6Remote: 64})
	if err != nil {
		panic(err)
	}
	tunnel, err := db.Insert(spd.Policy{
		Dir: spd.DirOut,
		Selector: spd.Selector{
			Local:  netip.MustParsePrefix("10.22.0.0/20"),
			Remote: netip.MustParsePrefix("10.24.1.0/24"),
		},
		Priority: 100,
		Action:   spd.Protect,
		Trap:     true,
		SA:       0x42,
	})
	if err != nil {
		panic(err)
	}
	_, err = db.Insert(spd.Policy{
		Dir: spd.DirOut,
		Selector: spd.Selector{
			Local:       netip.MustParsePrefix("10.0.0.0/8"),
			Remote:      netip.MustParsePrefix("0.0.0.0/0"),
			Proto:       17,
			RemotePorts: spd.Port(53),
		},
		Priority: 10,
		Action:   spd.Bypass,
	})
	if err != nil {
		panic(err)
	}

	for _, k := range []spd.Key{
		{Src: netip.MustParseAddr("10.22.1.1"), Dst: netip.MustParseAddr("10.24.1.9"), Proto: 6, SrcPort: 40000, DstPort: 443},
		{Src: netip.MustParseAddr("10.22.1.1"), Dst: netip.MustParseAddr("10.24.1.9"), Proto: 17, SrcPort: 40000, DstPort: 53},
		{Src: netip.MustParseAddr("10.22.1.1"), Dst: netip.MustParseAddr("10.25.0.1"), Proto: 6, SrcPort: 40000, DstPort: 443},
	} {
		if e := db.Lookup(spd.DirOut, &k); e != nil {
			fmt.Printf("%v -> %v: %v, trap %v, SA %#x\n", k.Src, k.Dst, e.Action(), e.Trap(), e.SA())
		} else {
			fmt.Printf("%v -> %v: no policy\n", k.Src, k.Dst)
		}
	}
	if err := db.Delete(tunnel); err != nil {
		panic(err)
	}
	st := db.Stats()
	fmt.Println(st.Policies[spd.DirOut], "outbound policies,", st.Hashed, "hashed")
	// Output:
	// 10.22.1.1 -> 10.24.1.9: protect, trap true, SA 0x42
	// 10.22.1.1 -> 10.24.1.9: bypass, trap false, SA 0x0
	// 10.22.1.1 -> 10.25.0.1: no policy
	// 1 outbound policies, 0 hashed
}
