//go:build race

package dataplane

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts mean nothing under it. `make test` runs the allocation
// tests a second time without -race.
const raceEnabled = true
