package controlloop

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

// TestSimCycleDoesNotAllocate runs cycles of both configured loops on the real sim devices
// (not fakes): the whole path from the device read to the actuator write allocates nothing.
func TestSimCycleDoesNotAllocate(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	e := newExtension(cfg, settings())
	e.registry = backends.NewRegistry(nil)
	session, err := e.registry.Open(cfg.Hardware, hardware.Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, session.Close()) }()
	e.session = session
	e.owned = map[string]bool{}
	pvs := map[string]*loop.Loop{}
	for i := range cfg.Loops {
		spec, err := e.buildSpec(&cfg.Loops[i], pvs)
		require.NoError(t, err)
		spec.TraceEvery = 3
		l, err := loop.New(spec, nil, nil)
		require.NoError(t, err)
		pvs[spec.Name] = l
		var s loop.Sample
		var ev loop.Event
		var sp loop.CycleSpan
		allocs := testing.AllocsPerRun(300, func() {
			now := schedule.Now()
			l.Cycle(schedule.Tick{Deadline: now, Woke: now})
			// Empty the rings as the drainer does, so that a full ring is not what is measured.
			l.Samples().Pop(&s)
			for l.Events().Pop(&ev) {
			}
			l.Spans().Pop(&sp)
		})
		assert.Zero(t, allocs, "loop %s", spec.Name)
	}
}
