package loop

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
)

func setMode(m pid.Mode) Command {
	return Command{Kind: CmdSetMode, Mode: m, Setpoint: math.NaN(), MaxRate: math.NaN(), OutputMax: math.NaN(), Speed: math.NaN(), Manual: math.NaN(), MotorOn: -1, Alarm: -1}
}

func motorOn(on bool) Command {
	c := Command{Kind: CmdSetMotor, Setpoint: math.NaN(), MaxRate: math.NaN(), OutputMax: math.NaN(), Speed: math.NaN(), Manual: math.NaN(), MotorOn: 0, Alarm: -1}
	if on {
		c.MotorOn = 1
	}
	return c
}

func clearDryRunCmd() Command { return Command{Kind: CmdClearDryRun, Alarm: -1, MotorOn: -1} }

// In dry run the loop computes (the PID would heat a cold oven) but writes nothing after the
// safe state of the start; every held-back write is counted, and status and published
// output describe the actuator (safe), with the would-be value beside it.
func TestDryRunComputesButWritesNothing(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.DryRun = true
	l := newLoop(t, s)
	require.NoError(t, l.ForceSafe(l.ctx), "start-up writes the safe state for real")
	writesAtStart := len(io.heater.Writes())
	for range 10 {
		tick(l)
	}
	duty, _ := io.get()
	assert.Zero(t, duty)
	assert.Equal(t, writesAtStart, len(io.heater.Writes()), "no actuator write in dry run")
	assert.Equal(t, uint64(10), l.DryRunWrites(0), "every held-back write is counted")
	assert.True(t, l.Safe(), "the actuator holds its safe state")
	assert.Zero(t, l.Output())
	st := l.Status()
	assert.True(t, st.DryRun)
	assert.Positive(t, st.DryRunOutput, "the controller still computes: below the setpoint it would heat")
	assert.Equal(t, pid.Auto, st.Mode)

	var ev Event
	var records []float64
	for l.events.Pop(&ev) {
		if ev.Kind == EventDryRunWrite {
			records = append(records, ev.Value)
		}
	}
	require.Len(t, records, 1, "ten cycles within a second record the held-back value once, not per cycle")
	assert.Positive(t, records[0])
}

// Arming a loop is refused in dry run: SET_MODE auto and SET_MOTOR on. Manual and off are
// allowed (an operator checks the wiring with a manual output that is still not written).
// CLEAR_DRY_RUN puts the loop in mode off, writing again; only then is auto accepted.
func TestDryRunRefusesAutoUntilCleared(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.DryRun = true
	l := newLoop(t, s)
	require.NoError(t, l.ForceSafe(l.ctx))

	require.NoError(t, command(t, l, setMode(pid.Off)))
	assert.ErrorIs(t, command(t, l, setMode(pid.Auto)), ErrDryRun)
	assert.Equal(t, pid.Off, l.Mode(), "a refused command changes nothing")

	manual := setMode(pid.Manual)
	manual.Manual = 0.4
	require.NoError(t, command(t, l, manual))
	tick(l)
	duty, _ := io.get()
	assert.Zero(t, duty, "a manual output is not written in dry run either")
	assert.InDelta(t, 0.4, l.Status().DryRunOutput, 1e-9)

	writes := len(io.heater.Writes())
	require.NoError(t, command(t, l, clearDryRunCmd()))
	assert.False(t, l.DryRun())
	assert.Equal(t, pid.Off, l.Mode(), "clearing dry run never starts a heater by itself")
	assert.Greater(t, len(io.heater.Writes()), writes, "the cycle that cleared dry run writes the actuator")
	duty, _ = io.get()
	assert.Zero(t, duty, "in mode off the actuator gets its safe state")

	require.NoError(t, command(t, l, setMode(pid.Auto)))
	tick(l)
	duty, _ = io.get()
	assert.Positive(t, duty, "after dry run, auto heats a cold oven")
	assert.False(t, l.Status().DryRun)

	require.NoError(t, command(t, l, clearDryRunCmd()), "clearing again is harmless")
	assert.Equal(t, pid.Auto, l.Mode(), "and does not switch a running loop off")
}

// A motor's enable pin is held in dry run too: SET_MOTOR on is refused, and the enable
// output's would-be level is counted under its own actuator.
func TestDryRunHoldsMotorEnable(t *testing.T) {
	io := newDoubles(0, true)
	s := Spec{
		Name: "conveyor", Period: 10 * time.Millisecond,
		Input: io.sensor.ReadTemperature, InputName: "motor_tach", ValidMin: -100, ValidMax: 3500,
		Main:   Output{Name: "motor_speed", Duty: io.heater.WriteDuty},
		Enable: &Output{Name: "motor_enable", Level: io.enable.WriteLevel},
		Kind:   OnOff, OnOff: &onoff.Controller{Hysteresis: 100},
		Setpoint: 1500, SetpointMin: 0, SetpointMax: 3000, Speed: 0.8, DryRun: true,
	}
	l := newLoop(t, s)
	require.NoError(t, l.ForceSafe(l.ctx))
	for range 3 {
		tick(l)
	}
	duty, enable := io.get()
	assert.Zero(t, duty)
	assert.False(t, enable, "the motor stays disabled")
	assert.Equal(t, uint64(3), l.DryRunWrites(1), "enable writes are counted separately")
	assert.InDelta(t, 0.8, l.Status().DryRunOutput, 1e-9, "below the band the motor would run at its speed")

	assert.ErrorIs(t, command(t, l, motorOn(true)), ErrDryRun)
	require.NoError(t, command(t, l, motorOn(false)), "switching off is always allowed")
	require.NoError(t, command(t, l, clearDryRunCmd()))
	require.NoError(t, command(t, l, motorOn(true)))
	tick(l)
	duty, enable = io.get()
	assert.InDelta(t, 0.8, duty, 1e-9)
	assert.True(t, enable)
}

// The dry-run cycle allocates nothing, like the normal one.
func TestDryRunCycleDoesNotAllocate(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.DryRun = true
	l := newLoop(t, s)
	var ev Event
	var sm Sample
	allocs := testing.AllocsPerRun(200, func() {
		tick(l)
		l.samples.Pop(&sm)
		for l.events.Pop(&ev) {
		}
	})
	assert.Zero(t, allocs)
}
