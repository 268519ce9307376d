package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

// On the sim backend too, an output opens in its safe state: a second session that opens
// the heater turns it off, as opening the pin does on a Pi.
func TestSimOutputOpensSafe(t *testing.T) {
	reg := newRegistry(hardwaretest.NewClock())
	s, err := reg.Open(hardware.Config{Devices: []hardware.DeviceConfig{{Name: "heater", Kind: hardware.KindDutyOutput}}}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	h, err := s.DutyOutput("heater")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 0.8))
	require.InDelta(t, 0.8, Plant(s).HeaterDuty(), 1e-9)
	again, err := reg.Open(hardware.Config{Devices: []hardware.DeviceConfig{{Name: "heater2", Kind: hardware.KindDutyOutput, Signal: hardware.SignalHeater}}}, hardware.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, again.Close()) })
	assert.Zero(t, Plant(s).HeaterDuty())
}

// On the sim the plant sees the safe states too.
func TestSimOutputsStartAndEndAtTheirSafeState(t *testing.T) {
	s, err := newRegistry(hardwaretest.NewClock()).Open(hardware.Config{Devices: []hardware.DeviceConfig{
		{Name: "heater", Kind: hardware.KindDutyOutput, Signal: hardware.SignalHeater},
		{Name: "motor_enable", Kind: hardware.KindGPIOOutput, Signal: hardware.SignalMotorEnable},
	}}, hardware.Settings{SafeStates: map[string]float64{"heater": 0.25, "motor_enable": 1}})
	require.NoError(t, err)
	pl := Plant(s)
	assert.InDelta(t, 0.25, pl.HeaterDuty(), 1e-12)
	assert.True(t, pl.MotorEnabled())
	h, err := s.DutyOutput("heater")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 1))
	require.NoError(t, s.Close())
	assert.InDelta(t, 0.25, pl.HeaterDuty(), 1e-12, "Close drives the heater back to its safe duty")
	assert.True(t, pl.MotorEnabled())
}
