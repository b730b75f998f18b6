package control

import (
	"sync"
	"testing"
)

// The segmented table under concurrent use: every SA put is found by SPI
// and by name until removed, the count stays exact, and a stale remove
// (another SA under the same SPI) changes nothing.
func TestSATable(t *testing.T) {
	var tab saTable
	cfgs := []*PeerConfig{{Name: "a"}, {Name: "b"}}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				spi := (uint64(w)<<20 | uint64(i)) * 0x9e3779b97f4a7c15 // distinct, spread
				sa := &IKESA{cfg: cfgs[i%2]}
				tab.put(spi, sa)
				if tab.get(spi) != sa {
					t.Errorf("SA %x not found after put", spi)
					return
				}
				if i%2 == 1 {
					tab.remove(spi, &IKESA{}) // not the one there: no-op
					tab.remove(spi, sa)
					if tab.get(spi) != nil {
						t.Errorf("SA %x found after remove", spi)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := tab.len(); n != 2000 || len(tab.all()) != 2000 {
		t.Fatalf("%d SAs counted, %d listed; want 2000", n, len(tab.all()))
	}
	if n := len(tab.byName("a")); n != 2000 {
		t.Fatalf("%d SAs of connection a, want 2000", n)
	}
	if n := len(tab.byName("b")); n != 0 {
		t.Fatalf("%d SAs of connection b, want 0", n)
	}
}
