package sim

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

// newRegistry is a registry with the sim backend alone.
func newRegistry(clock hardware.Clock) *hardware.Registry {
	return hardware.NewRegistry(clock, hardware.Backends{hardware.BackendSim: New})
}

// openSim opens a sim session on a fresh registry with a manual clock.
func openSim(t *testing.T, cfg hardware.Config) (*hardware.Session, *hardwaretest.Clock) {
	t.Helper()
	clock := hardwaretest.NewClock()
	s, err := newRegistry(clock).Open(cfg, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s, clock
}
