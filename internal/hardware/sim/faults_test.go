package sim

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

// faultRig has one device of each input role, all with a valid range and stuck detection.
func faultRig(faults ...hardware.FaultSpec) hardware.Config {
	rng := &hardware.Range{Min: -20, Max: 150}
	return hardware.Config{
		Timeout: 20 * time.Millisecond,
		Devices: []hardware.DeviceConfig{
			{Name: "tank_temp", Kind: hardware.KindDS18B20, ValidRange: rng, StuckAfter: 3, Timeout: 20 * time.Millisecond},
			{Name: "supply", Kind: hardware.KindADS1115, ValidRange: &hardware.Range{Min: 3, Max: 3.6}, StuckAfter: 3},
			{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17"},
			{Name: "heater", Kind: hardware.KindDutyOutput},
		},
		Sim: hardware.SimConfig{Faults: faults},
	}
}

func readAny(ctx context.Context, d hardware.Device) error {
	switch d := d.(type) {
	case hardware.TemperatureInput:
		_, err := d.ReadTemperature(ctx)
		return err
	case hardware.AnalogInput:
		_, err := d.ReadVoltage(ctx)
		return err
	case hardware.DigitalInput:
		_, err := d.ReadLevel(ctx)
		return err
	case hardware.DutyOutput:
		return d.WriteDuty(ctx, 0.5)
	}
	panic("unknown device")
}

func TestEveryFaultKindGivesItsErrorType(t *testing.T) {
	tests := []struct {
		kind   hardware.FaultKind
		device string
		reads  int // faulted reads until the error shows (stuck: stuck_after counts the last good read too)
		want   hardware.ErrorType
	}{
		{hardware.FaultNaN, "tank_temp", 1, hardware.ErrorInvalid},
		{hardware.FaultOutOfRange, "tank_temp", 1, hardware.ErrorOutOfRange},
		{hardware.FaultBusTimeout, "tank_temp", 1, hardware.ErrorTimeout},
		{hardware.FaultSlowRead, "tank_temp", 1, hardware.ErrorTimeout},
		{hardware.FaultDisconnected, "tank_temp", 1, hardware.ErrorNack},
		{hardware.FaultStuck, "tank_temp", 2, hardware.ErrorStale},
		{hardware.FaultNaN, "supply", 1, hardware.ErrorInvalid},
		{hardware.FaultOutOfRange, "supply", 1, hardware.ErrorOutOfRange},
		{hardware.FaultStuck, "supply", 2, hardware.ErrorStale},
		{hardware.FaultDisconnected, "supply", 1, hardware.ErrorNack},
		{hardware.FaultDisconnected, "door", 1, hardware.ErrorInvalid},
		{hardware.FaultBusTimeout, "door", 1, hardware.ErrorTimeout},
		{hardware.FaultNaN, "door", 1, hardware.ErrorInvalid},
		{hardware.FaultBusTimeout, "heater", 1, hardware.ErrorTimeout},
		{hardware.FaultDisconnected, "heater", 1, hardware.ErrorInvalid},
		{hardware.FaultStuck, "heater", 1, hardware.ErrorStale},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"/"+tt.device, func(t *testing.T) {
			s, clock := openSim(t, faultRig())
			dev, ok := s.Device(tt.device)
			require.True(t, ok)
			clock.Advance(time.Second)
			require.NoError(t, readAny(ctx, dev), "healthy before the fault")
			require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: tt.device, Kind: tt.kind}))
			var err error
			for i := 0; i < tt.reads; i++ {
				clock.Advance(time.Second)
				err = readAny(ctx, dev)
				if i < tt.reads-1 {
					require.NoError(t, err, "read %d", i)
				}
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, hardware.ErrorTypeOf(err), err.Error())
			assert.Contains(t, err.Error(), tt.device)

			was, err := s.Faults().Clear(tt.device)
			require.NoError(t, err)
			assert.True(t, was)
			clock.Advance(time.Second)
			require.NoError(t, readAny(ctx, dev), "healthy once cleared")
		})
	}
}

func TestOutOfRangeKeepsTheValue(t *testing.T) {
	s, _ := openSim(t, faultRig())
	require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: "tank_temp", Kind: hardware.FaultOutOfRange, Value: 999}))
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	v, err := temp.ReadTemperature(ctx)
	assert.Equal(t, hardware.ErrorOutOfRange, hardware.ErrorTypeOf(err))
	assert.InDelta(t, 999, v, 1e-9, "the measured value comes back with the error")

	require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: "tank_temp", Kind: hardware.FaultNaN}))
	v, err = temp.ReadTemperature(ctx)
	assert.Equal(t, hardware.ErrorInvalid, hardware.ErrorTypeOf(err), "the most recent fault wins")
	assert.True(t, math.IsNaN(v))
}

func TestSlowReadWithinTimeoutSucceeds(t *testing.T) {
	s, _ := openSim(t, faultRig())
	require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: "tank_temp", Kind: hardware.FaultSlowRead, Delay: 2 * time.Millisecond}))
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	_, err = temp.ReadTemperature(ctx)
	require.NoError(t, err)

	// A caller's own deadline cuts a hung bus short as well.
	require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: "tank_temp", Kind: hardware.FaultBusTimeout}))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = temp.ReadTemperature(cctx)
	assert.Equal(t, hardware.ErrorTimeout, hardware.ErrorTypeOf(err))
}

func TestScriptedFaultWindow(t *testing.T) {
	s, clock := openSim(t, faultRig(hardware.FaultSpec{At: 5 * time.Second, Duration: 5 * time.Second, Device: "tank_temp", Kind: hardware.FaultBusTimeout}))
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	want := map[time.Duration]hardware.ErrorType{0: "", 4 * time.Second: "", 5 * time.Second: hardware.ErrorTimeout,
		9 * time.Second: hardware.ErrorTimeout, 10 * time.Second: "", 30 * time.Second: ""}
	start := clock.Now()
	for _, at := range []time.Duration{0, 4 * time.Second, 5 * time.Second, 9 * time.Second, 10 * time.Second, 30 * time.Second} {
		clock.Advance(start.Add(at).Sub(clock.Now()))
		_, err := temp.ReadTemperature(ctx)
		assert.Equal(t, want[at], hardware.ErrorTypeOf(err), "at %s", at)
		if at == 5*time.Second {
			active := s.Faults().Active()
			require.Len(t, active, 1)
			assert.Equal(t, hardware.ActiveFault{Device: "tank_temp", Kind: hardware.FaultBusTimeout, Until: start.Add(10 * time.Second)}, active[0])
		}
	}
	assert.Empty(t, s.Faults().Active())
}

func TestClearKeepsFutureScriptedFaults(t *testing.T) {
	s, clock := openSim(t, faultRig(
		hardware.FaultSpec{At: 0, Duration: 2 * time.Second, Device: "supply", Kind: hardware.FaultDisconnected},
		hardware.FaultSpec{At: 10 * time.Second, Device: "supply", Kind: hardware.FaultNaN},
	))
	supply, err := s.AnalogInput("supply")
	require.NoError(t, err)
	_, err = supply.ReadVoltage(ctx)
	assert.Equal(t, hardware.ErrorNack, hardware.ErrorTypeOf(err))
	was, err := s.Faults().Clear("supply")
	require.NoError(t, err)
	assert.True(t, was)
	_, err = supply.ReadVoltage(ctx)
	require.NoError(t, err)
	clock.Advance(10 * time.Second)
	_, err = supply.ReadVoltage(ctx)
	assert.Equal(t, hardware.ErrorInvalid, hardware.ErrorTypeOf(err), "a scripted fault with no duration lasts")
}

func TestInjectedFaultDuration(t *testing.T) {
	s, clock := openSim(t, faultRig())
	require.NoError(t, s.Faults().Inject(hardware.FaultSpec{Device: "supply", Kind: hardware.FaultNaN, Duration: 3 * time.Second, At: time.Hour}))
	supply, err := s.AnalogInput("supply")
	require.NoError(t, err)
	_, err = supply.ReadVoltage(ctx)
	assert.Equal(t, hardware.ErrorInvalid, hardware.ErrorTypeOf(err), "Inject ignores at and starts now")
	clock.Advance(3 * time.Second)
	_, err = supply.ReadVoltage(ctx)
	require.NoError(t, err)
}

func TestFaultAPIErrors(t *testing.T) {
	s, _ := openSim(t, faultRig())
	require.ErrorContains(t, s.Faults().Inject(hardware.FaultSpec{Device: "nope", Kind: hardware.FaultNaN}), `fault: no open device is named "nope"`)
	require.ErrorContains(t, s.Faults().Inject(hardware.FaultSpec{Device: "supply", Kind: "fire"}), `fault: kind: "fire"`)
	_, err := s.Faults().Clear("nope")
	require.Error(t, err)
	was, err := s.Faults().Clear("supply")
	require.NoError(t, err)
	assert.False(t, was)

	reg := newRegistry(nil)
	s2, err := reg.Open(hardware.Config{}, hardware.Settings{})
	require.NoError(t, err)
	f := s2.Faults()
	require.NoError(t, s2.Close())
	require.ErrorContains(t, f.Inject(hardware.FaultSpec{Device: "supply", Kind: hardware.FaultNaN}), "no hardware session is open")
}

func TestScriptedFaultOnAnUnopenedDeviceIsLogged(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	s, err := newRegistry(hardwaretest.NewClock()).Open(hardware.Config{Sim: hardware.SimConfig{Faults: []hardware.FaultSpec{{Device: "room_temp", Kind: hardware.FaultNaN}}}},
		hardware.Settings{Logger: zap.New(core)})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	require.Equal(t, 1, logs.Len())
	assert.Equal(t, "room_temp", logs.All()[0].ContextMap()["device"])
}
