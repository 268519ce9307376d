package hardwaretest

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

var ctx = context.Background()

// Each double has one role: a type switch over the hardware interfaces, as the receiver and
// the controlloop extension make, finds the role its constructor names.
func TestDoublesHaveOneRole(t *testing.T) {
	role := func(d hardware.Device) hardware.Role {
		switch d.(type) {
		case hardware.TemperatureInput:
			return hardware.RoleTemperatureInput
		case hardware.AnalogInput:
			return hardware.RoleAnalogInput
		case hardware.DigitalInput:
			return hardware.RoleDigitalInput
		case hardware.DutyOutput:
			return hardware.RoleDutyOutput
		case hardware.DigitalOutput:
			return hardware.RoleDigitalOutput
		}
		return hardware.RoleUnknown
	}
	info := hardware.Info{Name: "x"}
	assert.Equal(t, hardware.RoleAnalogInput, role(NewAnalogInput(info)))
	assert.Equal(t, hardware.RoleTemperatureInput, role(NewTemperatureInput(info)))
	assert.Equal(t, hardware.RoleDigitalInput, role(NewDigitalInput(info)))
	assert.Equal(t, hardware.RoleDigitalOutput, role(NewDigitalOutput(info)))
	assert.Equal(t, hardware.RoleDutyOutput, role(NewDutyOutput(info)))
	assert.Equal(t, info, NewDutyOutput(info).Info())
}

func TestInputsServeWhatTheTestSet(t *testing.T) {
	temp := NewTemperatureInput(hardware.Info{Name: "oven_temp"})
	temp.Set(21.5)
	v, err := temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.Equal(t, 21.5, v)

	boom := &hardware.Error{Device: "oven_temp", Type: hardware.ErrorTimeout}
	temp.SetErr(boom)
	v, err = temp.ReadTemperature(ctx)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 21.5, v, "the value comes with the error, as an out-of-range read does")
	temp.SetErr(nil)
	temp.OnRead(func(context.Context) (float64, error) { return math.NaN(), nil })
	v, err = temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.True(t, math.IsNaN(v))
	temp.OnRead(func(context.Context) (float64, error) { panic("driver bug") })
	assert.PanicsWithValue(t, "driver bug", func() { _, _ = temp.ReadTemperature(ctx) })
	assert.Equal(t, 4, temp.Reads())

	analog := NewAnalogInput(hardware.Info{Name: "tach"})
	analog.Set(1.65)
	v, err = analog.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1.65, v)

	door := NewDigitalInput(hardware.Info{Name: "door"})
	door.SetLevel(true)
	door.SetEdges(3)
	lvl, err := door.ReadLevel(ctx)
	require.NoError(t, err)
	assert.True(t, lvl)
	n, err := door.Edges(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), n)
	door.SetErr(boom)
	_, err = door.ReadLevel(ctx)
	require.ErrorIs(t, err, boom)
	_, err = door.Edges(ctx)
	require.ErrorIs(t, err, boom)
}

// Every write is recorded with its time and its answer, failed ones too; a failed write
// leaves the output as it was.
func TestOutputsRecordEveryWrite(t *testing.T) {
	clock := NewClock()
	heater := NewDutyOutput(hardware.Info{Name: "heater"})
	heater.SetClock(clock)
	heater.Preset(0.7)
	assert.Equal(t, 0.7, heater.Duty())
	assert.Empty(t, heater.Writes(), "a preset is not a write")

	require.NoError(t, heater.WriteDuty(ctx, 0))
	clock.Advance(time.Second)
	refused := errors.New("refused")
	heater.FailWrites(refused)
	require.ErrorIs(t, heater.WriteDuty(ctx, 1.5), refused)
	assert.Zero(t, heater.Duty(), "a failed write changes nothing")
	heater.FailWrites(nil)
	clock.Advance(time.Second)
	require.NoError(t, heater.WriteDuty(ctx, 1.5))
	assert.Equal(t, 1.5, heater.Duty(), "recorded as asked, not clamped")
	start := NewClock().Now()
	assert.Equal(t, []Write{
		{At: start, Duty: 0},
		{At: start.Add(time.Second), Duty: 1.5, Err: refused},
		{At: start.Add(2 * time.Second), Duty: 1.5},
	}, heater.Writes())

	enable := NewDigitalOutput(hardware.Info{Name: "motor_enable"})
	enable.SetClock(clock)
	enable.Preset(true)
	enable.FailWrites(refused)
	require.ErrorIs(t, enable.WriteLevel(ctx, false), refused)
	assert.True(t, enable.Level())
	enable.FailWrites(nil)
	require.NoError(t, enable.WriteLevel(ctx, false))
	assert.False(t, enable.Level())
	assert.Equal(t, []Write{
		{At: start.Add(2 * time.Second), Level: false, Err: refused},
		{At: start.Add(2 * time.Second), Level: false},
	}, enable.Writes())
}

func TestClock(t *testing.T) {
	c := NewClock()
	t0 := c.Now()
	assert.Equal(t, t0, c.Now(), "it does not move on its own")
	c.Advance(time.Minute)
	assert.Equal(t, t0.Add(time.Minute), c.Now())
}
