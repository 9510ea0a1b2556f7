package reauth

import (
	"sync/atomic"
	"time"
)

// fakeClock is the tests' one clock: it stands still until the test moves
// it, and is safe for concurrent use. Pass its Now as OAuth2Options.Now or
// RegistryOptions.Now.
type fakeClock struct {
	start  time.Time
	offset atomic.Int64
}

func newFakeClock() *fakeClock {
	return &fakeClock{start: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the start plus the offset the test has set.
func (c *fakeClock) Now() time.Time { return c.start.Add(time.Duration(c.offset.Load())) }

// Set puts the clock at d after its start.
func (c *fakeClock) Set(d time.Duration) { c.offset.Store(int64(d)) }

// Advance moves the clock on by d.
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
