package sim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

var ctx = context.Background()

// heaterRig is a loop's heater and its sensor plus an ambient sensor.
func heaterRig(seed int64) hardware.Config {
	return hardware.Config{
		Devices: []hardware.DeviceConfig{
			{Name: "tank_temp", Kind: hardware.KindDS18B20, Signal: hardware.SignalHeaterTemperature},
			{Name: "room_temp", Kind: hardware.KindMCP9808, Signal: hardware.SignalAmbientTemperature},
			{Name: "heater", Kind: hardware.KindDutyOutput, Signal: hardware.SignalHeater},
		},
		Sim: hardware.SimConfig{Seed: seed, TimeScale: 60},
	}
}

// series drives the heater at full duty and reads the tank once per wall second.
func series(t *testing.T, seed int64, n int) []float64 {
	s, clock := openSim(t, heaterRig(seed))
	h, err := s.DutyOutput("heater")
	require.NoError(t, err)
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 1))
	out := make([]float64, n)
	for i := range out {
		clock.Advance(time.Second)
		out[i], err = temp.ReadTemperature(ctx)
		require.NoError(t, err)
	}
	return out
}

func TestSimDeterministic(t *testing.T) {
	a := series(t, 7, 50)
	b := series(t, 7, 50)
	c := series(t, 8, 50)
	assert.Equal(t, a, b, "same seed, same reads: same series")
	assert.NotEqual(t, a, c, "another seed gives other noise")
}

func TestSimHeaterFirstOrderWithDeadTime(t *testing.T) {
	s, clock := openSim(t, heaterRig(1))
	h, err := s.DutyOutput("heater")
	require.NoError(t, err)
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 1))
	assert.InDelta(t, 1.0, Plant(s).HeaterDuty(), 1e-9, "the actuator drives the plant")

	// time_scale 60: 50 ms wall is 3 s plant, inside the 5 s dead time.
	clock.Advance(50 * time.Millisecond)
	v, err := temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 22, v, 0.3, "nothing happens during the dead time")

	// One time constant (120 s plant = 2 s wall) after the dead time: 63 % of the 60 K rise.
	clock.Advance((125*time.Second)/60 - 50*time.Millisecond)
	truth := Plant(s).Temperature(clock.Now())
	assert.InDelta(t, 22+60*(1-math.Exp(-1)), truth, 0.3)
	v, err = temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, truth, v, 0.3, "the sensor reads the plant plus small noise")

	// Steady state after many time constants, then cooling once the duty drops to 0.
	clock.Advance(20 * time.Minute)
	assert.InDelta(t, 82, Plant(s).Temperature(clock.Now()), 0.05)
	require.NoError(t, h.WriteDuty(ctx, 0))
	clock.Advance(20 * time.Minute)
	assert.InDelta(t, 22, Plant(s).Temperature(clock.Now()), 0.05)

	room, err := s.TemperatureInput("room_temp")
	require.NoError(t, err)
	v, err = room.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 22, v, 0.3)
}

func TestSimMotorTachAndFlowMeter(t *testing.T) {
	s, clock := openSim(t, hardware.Config{
		Devices: []hardware.DeviceConfig{
			{Name: "motor_on", Kind: hardware.KindGPIOOutput, Signal: hardware.SignalMotorEnable},
			{Name: "motor_cmd", Kind: hardware.KindDutyOutput, Signal: hardware.SignalMotorSpeed},
			{Name: "tach", Kind: hardware.KindADS1115, Signal: hardware.SignalMotorTach},
			{Name: "flow", Kind: hardware.KindGPIOInput, Signal: hardware.SignalFlowMeter},
		},
	})
	on, err := s.DigitalOutput("motor_on")
	require.NoError(t, err)
	cmd, err := s.DutyOutput("motor_cmd")
	require.NoError(t, err)
	tach, err := s.AnalogInput("tach")
	require.NoError(t, err)
	flow, err := s.DigitalInput("flow")
	require.NoError(t, err)

	require.NoError(t, cmd.WriteDuty(ctx, 0.5))
	clock.Advance(5 * time.Second)
	v, err := tach.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 0, v, 0.03, "a disabled motor does not turn")

	require.NoError(t, on.WriteLevel(ctx, true))
	assert.True(t, on.Level())
	clock.Advance(5 * time.Second) // 10 time constants
	v, err = tach.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 1.65, v, 0.03, "half speed gives half the tach full scale")

	n1, err := flow.Edges(ctx)
	require.NoError(t, err)
	clock.Advance(10 * time.Second)
	n2, err := flow.Edges(ctx)
	require.NoError(t, err)
	// 1500 rpm · 0.5 pulse/rev = 12.5 pulses/s.
	assert.InDelta(t, 125, float64(n2-n1), 1)

	// Closing the session drives the outputs safe and the motor stops.
	pl := Plant(s)
	require.True(t, pl.MotorEnabled())
	require.NoError(t, s.Close())
	assert.False(t, pl.MotorEnabled())
	assert.Zero(t, pl.MotorCommand())
}

func TestSimDoorSwitch(t *testing.T) {
	s, clock := openSim(t, hardware.Config{Devices: []hardware.DeviceConfig{
		{Name: "door", Kind: hardware.KindGPIOInput, Signal: hardware.SignalDoor, Edge: "both"},
		{Name: "door_closes", Kind: hardware.KindGPIOInput, Signal: hardware.SignalDoor},
	}})
	door, err := s.DigitalInput("door")
	require.NoError(t, err)
	closes, err := s.DigitalInput("door_closes")
	require.NoError(t, err)
	lvl, err := door.ReadLevel(ctx)
	require.NoError(t, err)
	assert.True(t, lvl, "the door starts closed")
	Plant(s).SetDoor(clock.Now(), false)
	Plant(s).SetDoor(clock.Now(), true)
	Plant(s).SetDoor(clock.Now(), false)
	lvl, err = door.ReadLevel(ctx)
	require.NoError(t, err)
	assert.False(t, lvl)
	n, err := door.Edges(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), n)
	n, err = closes.Edges(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), n)
}

func TestSharedPlantAcrossSessions(t *testing.T) {
	clock := hardwaretest.NewClock()
	reg := newRegistry(clock)
	loopCfg := hardware.Config{Devices: []hardware.DeviceConfig{{Name: "heater", Kind: hardware.KindDutyOutput}}, Sim: hardware.SimConfig{TimeScale: 60}}
	loop, err := reg.Open(loopCfg, hardware.Settings{})
	require.NoError(t, err)

	_, err = reg.Open(hardware.Config{Sim: hardware.SimConfig{Seed: 99}}, hardware.Settings{})
	require.ErrorContains(t, err, "sim: the sim plant is already running with a different configuration")
	_, err = reg.Open(hardware.Config{Backend: hardware.BackendPeriph}, hardware.Settings{})
	require.ErrorContains(t, err, `backend: this process already uses backend "sim"`)

	// The receiver leaves sim empty and joins the loop's plant.
	rcv, err := reg.Open(hardware.Config{Devices: []hardware.DeviceConfig{{Name: "tank_temp", Kind: hardware.KindDS18B20}}}, hardware.Settings{})
	require.NoError(t, err)
	h, err := loop.DutyOutput("heater")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 1))
	temp, err := rcv.TemperatureInput("tank_temp")
	require.NoError(t, err)
	clock.Advance(5 * time.Second)
	v, err := temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.Greater(t, v, 50.0, "the loop's heater heats what the receiver reads")

	_, err = rcv.DutyOutput("tank_temp")
	require.ErrorContains(t, err, `device "tank_temp" is a ds18b20`)
	_, err = rcv.AnalogInput("nope")
	require.ErrorContains(t, err, `no device named "nope"`)

	require.NoError(t, loop.Close())
	require.NoError(t, loop.Close(), "Close is idempotent")
	assert.Zero(t, Plant(rcv).HeaterDuty(), "closing the loop's session turns its heater off")
	require.NoError(t, rcv.Close())
	assert.Nil(t, Plant(rcv), "the plant goes with the last session")

	// A new life of the registry starts from scratch with another config.
	again, err := reg.Open(hardware.Config{Sim: hardware.SimConfig{Seed: 99}}, hardware.Settings{})
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

func TestSimSignalsDefaultByKind(t *testing.T) {
	s, _ := openSim(t, hardware.Config{Devices: []hardware.DeviceConfig{
		{Name: "soc", Kind: hardware.KindSoCThermal},
		{Name: "supply", Kind: hardware.KindMCP3008},
		{Name: "lamp", Kind: hardware.KindGPIOOutput, Signal: hardware.SignalIndicator},
	}})
	soc, err := s.TemperatureInput("soc")
	require.NoError(t, err)
	v, err := soc.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 42, v, 1)
	supply, err := s.AnalogInput("supply")
	require.NoError(t, err)
	v, err = supply.ReadVoltage(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 3.3, v, 0.05)
	lamp, err := s.DigitalOutput("lamp")
	require.NoError(t, err)
	require.NoError(t, lamp.WriteLevel(ctx, true))
	assert.True(t, lamp.Level())
	assert.False(t, Plant(s).MotorEnabled(), "an indicator drives nothing in the plant")
	assert.Equal(t, "lamp", lamp.Info().ID)
	assert.Equal(t, hardware.BusGPIO, lamp.Info().BusType)
}

// Extensions start before receivers: when the control loop leaves sim empty and the
// receiver configures it, the receiver's configuration applies to the running plant.
func TestLaterSessionConfiguresAnUnconfiguredPlant(t *testing.T) {
	clock := hardwaretest.NewClock()
	reg := newRegistry(clock)
	loop, err := reg.Open(hardware.Config{Devices: []hardware.DeviceConfig{{Name: "heater", Kind: hardware.KindDutyOutput}}}, hardware.Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, loop.Close()) }()
	clock.Advance(2 * time.Second)

	rcvCfg := hardware.Config{
		Devices: []hardware.DeviceConfig{{Name: "tank_temp", Kind: hardware.KindDS18B20}},
		Sim: hardware.SimConfig{TimeScale: 60, Heater: hardware.SimHeaterConfig{Ambient: 30},
			Faults: []hardware.FaultSpec{{At: 5 * time.Second, Duration: time.Second, Device: "tank_temp", Kind: hardware.FaultNaN}}},
	}
	rcv, err := reg.Open(rcvCfg, hardware.Settings{})
	require.NoError(t, err)
	defer func() { require.NoError(t, rcv.Close()) }()
	same, err := reg.Open(hardware.Config{Sim: rcvCfg.Sim}, hardware.Settings{})
	require.NoError(t, err, "the same sim section again is fine")
	require.NoError(t, same.Close())
	_, err = reg.Open(hardware.Config{Sim: hardware.SimConfig{Seed: 3}}, hardware.Settings{})
	require.ErrorContains(t, err, "sim: the sim plant is already running with a different configuration")

	temp, err := rcv.TemperatureInput("tank_temp")
	require.NoError(t, err)
	v, err := temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.InDelta(t, 30, v, 0.3, "the unconfigured plant takes the new ambient")

	h, err := loop.DutyOutput("heater")
	require.NoError(t, err)
	require.NoError(t, h.WriteDuty(ctx, 1))
	clock.Advance(2 * time.Second) // 120 s plant at the new time scale
	v, err = temp.ReadTemperature(ctx)
	require.NoError(t, err)
	assert.Greater(t, v, 60.0, "the loop's heater follows the new time scale")

	// Scripted faults count from the plant's start: 2 s + 2 s have passed, so 5 s is 1 s away.
	clock.Advance(time.Second)
	_, err = temp.ReadTemperature(ctx)
	assert.Equal(t, hardware.ErrorInvalid, hardware.ErrorTypeOf(err))
}
