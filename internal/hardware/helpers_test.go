package hardware

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// manualClock is a Clock that moves only when told, so the plant and faults are
// deterministic in tests.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newManualClock() *manualClock {
	return &manualClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openSim opens a sim session on a fresh registry with a manual clock.
func openSim(t *testing.T, cfg Config) (*Session, *manualClock) {
	t.Helper()
	clock := newManualClock()
	s, err := NewRegistry(clock).Open(cfg, Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, clock
}
