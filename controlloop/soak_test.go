package controlloop

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

// TestSoakRandomFaults runs both loops for three minutes (FIELDCOL_SOAK=1; FIELDCOL_SOAK_DURATION
// changes it) while faults
// hit the oven sensor and the door opens and closes at random; it checks the safety
// invariants every few milliseconds and that the loops return to control after each ACK.
func TestSoakRandomFaults(t *testing.T) {
	if os.Getenv("FIELDCOL_SOAK") != "1" {
		t.Skip("soak test: set FIELDCOL_SOAK=1 (make soak)")
	}
	s := start(t, plantConfig(t, latchPath(t)), nil)
	pl := s.plant()
	oven, conv := s.ext.byName["oven"], s.ext.byName["conveyor"]
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []hardware.FaultKind{hardware.FaultNaN, hardware.FaultOutOfRange, hardware.FaultDisconnected, hardware.FaultBusTimeout}
	d := 3 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("FIELDCOL_SOAK_DURATION")); err == nil && v > 0 {
		d = v
	}
	end := time.Now().Add(d)
	var faults, doors int
	for time.Now().Before(end) {
		switch rng.IntN(3) {
		case 0:
			kind := kinds[rng.IntN(len(kinds))]
			c0 := oven.Status().Cycle
			require.NoError(t, s.ext.Fault(&api.FaultRequest{Device: "oven_temp", Kind: string(kind)}))
			faults++
			// Two cycles: the one in flight may have read before the fault, the next must act.
			// Counting cycles, not sleeping, keeps the check true on a loaded machine.
			waitCycles(t, oven, c0+2)
			for i := 0; i < 50; i++ {
				require.Zero(t, pl.HeaterDuty(), "heater on during a %s fault", kind)
				time.Sleep(2 * time.Millisecond)
			}
			require.NoError(t, s.ext.Fault(&api.FaultRequest{Device: "oven_temp", Clear: true}))
			require.Eventually(t, func() bool {
				return s.ext.Execute(context.Background(), &api.Request{Command: api.CmdAckAlarm, Loop: "oven"}) == nil
			}, 5*time.Second, 10*time.Millisecond)
		case 1:
			c0 := conv.Status().Cycle
			pl.SetDoor(s.session.Now(), false)
			doors++
			waitCycles(t, conv, c0+2)
			for i := 0; i < 50; i++ {
				require.False(t, pl.MotorEnabled(), "motor on with the door open")
				time.Sleep(2 * time.Millisecond)
			}
			pl.SetDoor(s.session.Now(), true)
		default:
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		}
		require.True(t, oven.Running() && conv.Running())
	}
	ok, overrun, skipped := oven.Counters()
	t.Logf("%d sensor faults, %d door openings; oven cycles ok=%d overrun=%d skipped=%d", faults, doors, ok, overrun, skipped)
	assert.Eventually(t, func() bool { return !oven.Safe() && pl.HeaterDuty() > 0 }, 10*time.Second, 10*time.Millisecond, "the oven is back in control")
}

func waitCycles(t *testing.T, l *loop.Loop, cycle uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return l.Status().Cycle >= cycle }, 10*time.Second, time.Millisecond)
}
