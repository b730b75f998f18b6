//go:build race

package spd

// raceEnabled: the race detector allocates on synchronization, so
// allocation counts mean nothing under it, and it slows the large tests
// down tenfold. `make test` runs the allocation tests a second time
// without -race.
const raceEnabled = true
