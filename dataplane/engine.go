package dataplane

import "github.com/espx/espx/crypto"

// Engine is one worker's ESP processing state: crypto scratch memory and the
// worker's counters. A worker owns one Engine and uses it from its own
// goroutine only; the SAs it processes may be shared with other workers.
type Engine struct {
	cs *crypto.Scratch
	C  *Counters
	// Now is the time of the current batch in Unix nanoseconds, set by the
	// worker once per batch and recorded as the SAs' last use; 0 records
	// nothing.
	Now int64
	n   pending
}

func (e *Engine) drop(d Drop) { e.n.drops[d]++ }

// NewEngine returns an engine that counts into c, or into new counters if c
// is nil.
func NewEngine(c *Counters) *Engine {
	if c == nil {
		c = new(Counters)
	}
	return &Engine{cs: crypto.NewScratch(), C: c}
}
