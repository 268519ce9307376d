package plant

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func params() Params {
	return Params{
		Heater: HeaterParams{Ambient: 20, MaxPower: 100, ThermalResistance: 0.5, TimeConstant: 100 * time.Second, DeadTime: 3 * time.Second},
		Motor:  MotorParams{MaxSpeed: 1200, TimeConstant: time.Second, FlowPulsesPerRev: 1},
	}
}

func TestTrajectoryDoesNotDependOnObservation(t *testing.T) {
	start := time.Unix(0, 0)
	often := New(params(), start)
	rarely := New(params(), start)
	often.SetHeaterDuty(start, 0.7)
	rarely.SetHeaterDuty(start, 0.7)
	for ms := 0; ms <= 200_000; ms += 7 {
		often.Temperature(start.Add(time.Duration(ms) * time.Millisecond))
	}
	end := start.Add(200 * time.Second)
	assert.Equal(t, often.Temperature(end), rarely.Temperature(end))
}

func TestDeadTimeAndTimeScale(t *testing.T) {
	start := time.Unix(0, 0)
	p := params()
	p.TimeScale = 10
	pl := New(p, start)
	pl.SetHeaterDuty(start, 1)
	// 0.25 s wall = 2.5 s plant, still inside the 3 s dead time.
	assert.Equal(t, 20.0, pl.Temperature(start.Add(250*time.Millisecond)))
	// 10.3 s wall = 103 s plant = dead time + one time constant.
	assert.InDelta(t, 20+50*0.632, pl.Temperature(start.Add(10300*time.Millisecond)), 0.2)
}

func TestMotorAndFlow(t *testing.T) {
	start := time.Unix(0, 0)
	pl := New(params(), start)
	pl.SetMotorCommand(start, 2) // clamped to 1
	assert.Equal(t, 1.0, pl.MotorCommand())
	pl.SetMotorEnable(start, true)
	assert.InDelta(t, 1200*(1-math.Exp(-1)), pl.Speed(start.Add(time.Second)), 0.01)
	rises, falls := pl.FlowEdges(start.Add(61 * time.Second))
	// 20 pulses/s for 61 s, minus the one time constant of lag while spinning up.
	assert.InDelta(t, 1200, float64(rises), 2)
	assert.GreaterOrEqual(t, falls, rises)
	pl.SetMotorEnable(start.Add(61*time.Second), false)
	assert.InDelta(t, 0, pl.Speed(start.Add(80*time.Second)), 1)
}

func TestReconfigureKeepsStateAndRebasesTime(t *testing.T) {
	start := time.Unix(0, 0)
	pl := New(params(), start)
	pl.SetHeaterDuty(start, 1)
	before := pl.Temperature(start.Add(50 * time.Second))
	p := params()
	p.TimeScale = 100
	pl.Reconfigure(start.Add(50*time.Second), p, false)
	assert.Equal(t, before, pl.Temperature(start.Add(50*time.Second)), "no jump when the time scale changes")
	assert.Equal(t, start.Add(50*time.Second), pl.Start())
	// The dead-time history was refilled with the current duty, so heating goes on at once.
	assert.Greater(t, pl.Temperature(start.Add(51*time.Second)), before+15, "100 s of plant time in 1 s")
}
