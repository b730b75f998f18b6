//go:build race

package fib

// raceEnabled: the race detector allocates on synchronization, so
// allocation counts mean nothing under it. `make test` runs the allocation
// tests a second time without -race.
const raceEnabled = true
