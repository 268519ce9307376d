package hardware

import (
	"context"
	"fmt"
	"math"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// faultRig has one device of each input role, all with a valid range and stuck detection.
func faultRig(faults ...FaultSpec) Config {
	rng := &Range{Min: -20, Max: 150}
	return Config{
		Timeout: 20 * time.Millisecond,
		Devices: []DeviceConfig{
			{Name: "tank_temp", Kind: KindDS18B20, ValidRange: rng, StuckAfter: 3, Timeout: 20 * time.Millisecond},
			{Name: "supply", Kind: KindADS1115, ValidRange: &Range{Min: 3, Max: 3.6}, StuckAfter: 3},
			{Name: "door", Kind: KindGPIOInput, Pin: "GPIO17"},
			{Name: "heater", Kind: KindDutyOutput},
		},
		Sim: SimConfig{Faults: faults},
	}
}

func readAny(ctx context.Context, d Device) error {
	switch d := d.(type) {
	case TemperatureInput:
		_, err := d.ReadTemperature(ctx)
		return err
	case AnalogInput:
		_, err := d.ReadVoltage(ctx)
		return err
	case DigitalInput:
		_, err := d.ReadLevel(ctx)
		return err
	case DutyOutput:
		return d.WriteDuty(ctx, 0.5)
	}
	panic("unknown device")
}

func TestEveryFaultKindGivesItsErrorType(t *testing.T) {
	tests := []struct {
		kind   FaultKind
		device string
		reads  int // faulted reads until the error shows (stuck: stuck_after counts the last good read too)
		want   ErrorType
	}{
		{FaultNaN, "tank_temp", 1, ErrorInvalid},
		{FaultOutOfRange, "tank_temp", 1, ErrorOutOfRange},
		{FaultBusTimeout, "tank_temp", 1, ErrorTimeout},
		{FaultSlowRead, "tank_temp", 1, ErrorTimeout},
		{FaultDisconnected, "tank_temp", 1, ErrorNack},
		{FaultStuck, "tank_temp", 2, ErrorStale},
		{FaultNaN, "supply", 1, ErrorInvalid},
		{FaultOutOfRange, "supply", 1, ErrorOutOfRange},
		{FaultStuck, "supply", 2, ErrorStale},
		{FaultDisconnected, "supply", 1, ErrorNack},
		{FaultDisconnected, "door", 1, ErrorInvalid},
		{FaultBusTimeout, "door", 1, ErrorTimeout},
		{FaultNaN, "door", 1, ErrorInvalid},
		{FaultBusTimeout, "heater", 1, ErrorTimeout},
		{FaultDisconnected, "heater", 1, ErrorInvalid},
		{FaultStuck, "heater", 1, ErrorStale},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"/"+tt.device, func(t *testing.T) {
			s, clock := openSim(t, faultRig())
			dev, ok := s.Device(tt.device)
			require.True(t, ok)
			clock.Advance(time.Second)
			require.NoError(t, readAny(ctx, dev), "healthy before the fault")
			require.NoError(t, s.Faults().Inject(FaultSpec{Device: tt.device, Kind: tt.kind}))
			var err error
			for i := 0; i < tt.reads; i++ {
				clock.Advance(time.Second)
				err = readAny(ctx, dev)
				if i < tt.reads-1 {
					require.NoError(t, err, "read %d", i)
				}
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, ErrorTypeOf(err), err.Error())
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
	require.NoError(t, s.Faults().Inject(FaultSpec{Device: "tank_temp", Kind: FaultOutOfRange, Value: 999}))
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	v, err := temp.ReadTemperature(ctx)
	assert.Equal(t, ErrorOutOfRange, ErrorTypeOf(err))
	assert.InDelta(t, 999, v, 1e-9, "the measured value comes back with the error")

	require.NoError(t, s.Faults().Inject(FaultSpec{Device: "tank_temp", Kind: FaultNaN}))
	v, err = temp.ReadTemperature(ctx)
	assert.Equal(t, ErrorInvalid, ErrorTypeOf(err), "the most recent fault wins")
	assert.True(t, math.IsNaN(v))
}

func TestSlowReadWithinTimeoutSucceeds(t *testing.T) {
	s, _ := openSim(t, faultRig())
	require.NoError(t, s.Faults().Inject(FaultSpec{Device: "tank_temp", Kind: FaultSlowRead, Delay: 2 * time.Millisecond}))
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	_, err = temp.ReadTemperature(ctx)
	require.NoError(t, err)

	// A caller's own deadline cuts a hung bus short as well.
	require.NoError(t, s.Faults().Inject(FaultSpec{Device: "tank_temp", Kind: FaultBusTimeout}))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = temp.ReadTemperature(cctx)
	assert.Equal(t, ErrorTimeout, ErrorTypeOf(err))
}

func TestScriptedFaultWindow(t *testing.T) {
	s, clock := openSim(t, faultRig(FaultSpec{At: 5 * time.Second, Duration: 5 * time.Second, Device: "tank_temp", Kind: FaultBusTimeout}))
	temp, err := s.TemperatureInput("tank_temp")
	require.NoError(t, err)
	want := map[time.Duration]ErrorType{0: "", 4 * time.Second: "", 5 * time.Second: ErrorTimeout,
		9 * time.Second: ErrorTimeout, 10 * time.Second: "", 30 * time.Second: ""}
	start := clock.Now()
	for _, at := range []time.Duration{0, 4 * time.Second, 5 * time.Second, 9 * time.Second, 10 * time.Second, 30 * time.Second} {
		clock.Advance(start.Add(at).Sub(clock.Now()))
		_, err := temp.ReadTemperature(ctx)
		assert.Equal(t, want[at], ErrorTypeOf(err), "at %s", at)
		if at == 5*time.Second {
			active := s.Faults().Active()
			require.Len(t, active, 1)
			assert.Equal(t, ActiveFault{Device: "tank_temp", Kind: FaultBusTimeout, Until: start.Add(10 * time.Second)}, active[0])
		}
	}
	assert.Empty(t, s.Faults().Active())
}

func TestClearKeepsFutureScriptedFaults(t *testing.T) {
	s, clock := openSim(t, faultRig(
		FaultSpec{At: 0, Duration: 2 * time.Second, Device: "supply", Kind: FaultDisconnected},
		FaultSpec{At: 10 * time.Second, Device: "supply", Kind: FaultNaN},
	))
	supply, err := s.AnalogInput("supply")
	require.NoError(t, err)
	_, err = supply.ReadVoltage(ctx)
	assert.Equal(t, ErrorNack, ErrorTypeOf(err))
	was, err := s.Faults().Clear("supply")
	require.NoError(t, err)
	assert.True(t, was)
	_, err = supply.ReadVoltage(ctx)
	require.NoError(t, err)
	clock.Advance(10 * time.Second)
	_, err = supply.ReadVoltage(ctx)
	assert.Equal(t, ErrorInvalid, ErrorTypeOf(err), "a scripted fault with no duration lasts")
}

func TestInjectedFaultDuration(t *testing.T) {
	s, clock := openSim(t, faultRig())
	require.NoError(t, s.Faults().Inject(FaultSpec{Device: "supply", Kind: FaultNaN, Duration: 3 * time.Second, At: time.Hour}))
	supply, err := s.AnalogInput("supply")
	require.NoError(t, err)
	_, err = supply.ReadVoltage(ctx)
	assert.Equal(t, ErrorInvalid, ErrorTypeOf(err), "Inject ignores at and starts now")
	clock.Advance(3 * time.Second)
	_, err = supply.ReadVoltage(ctx)
	require.NoError(t, err)
}

func TestFaultAPIErrors(t *testing.T) {
	s, _ := openSim(t, faultRig())
	require.ErrorContains(t, s.Faults().Inject(FaultSpec{Device: "nope", Kind: FaultNaN}), `fault: no open device is named "nope"`)
	require.ErrorContains(t, s.Faults().Inject(FaultSpec{Device: "supply", Kind: "fire"}), `fault: kind: "fire"`)
	_, err := s.Faults().Clear("nope")
	require.Error(t, err)
	was, err := s.Faults().Clear("supply")
	require.NoError(t, err)
	assert.False(t, was)

	reg := NewRegistry(nil)
	s2, err := reg.Open(Config{}, Settings{})
	require.NoError(t, err)
	f := s2.Faults()
	require.NoError(t, s2.Close())
	require.ErrorContains(t, f.Inject(FaultSpec{Device: "supply", Kind: FaultNaN}), "no hardware session is open")
}

func TestErrorTypeOf(t *testing.T) {
	assert.Equal(t, ErrorType(""), ErrorTypeOf(nil))
	assert.Equal(t, ErrorTimeout, ErrorTypeOf(context.DeadlineExceeded))
	assert.Equal(t, ErrorIO, ErrorTypeOf(assert.AnError))
	wrapped := classify("x", &Error{Device: "x", Type: ErrorStale})
	assert.Equal(t, ErrorStale, ErrorTypeOf(wrapped))
	assert.Equal(t, `device "x": stale`, wrapped.Error())
}

func TestScriptedFaultOnAnUnopenedDeviceIsLogged(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	s, err := NewRegistry(newManualClock()).Open(Config{Sim: SimConfig{Faults: []FaultSpec{{Device: "room_temp", Kind: FaultNaN}}}},
		Settings{Logger: zap.New(core)})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close()) }()
	require.Equal(t, 1, logs.Len())
	assert.Equal(t, "room_temp", logs.All()[0].ContextMap()["device"])
}

// The kernel's bus drivers tell a missing device (EREMOTEIO, ENXIO) from a timeout and a
// failed transfer (EIO); periph keeps only the errno's text ("sysfs-i2c: %v"), and the
// class must survive that.
func TestErrorTypeOfErrno(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  ErrorType
	}{
		{syscall.ETIMEDOUT, ErrorTimeout},
		{syscall.EREMOTEIO, ErrorNack},
		{syscall.ENXIO, ErrorNack},
		{syscall.ENODEV, ErrorNack},
		{syscall.ENOENT, ErrorNack},
		{syscall.EIO, ErrorIO},
		{syscall.EBUSY, ErrorIO},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			assert.Equal(t, c.want, ErrorTypeOf(c.errno))
			assert.Equal(t, c.want, ErrorTypeOf(fmt.Errorf("read: %w", &os.PathError{Op: "ioctl", Path: "/dev/i2c-1", Err: c.errno})))
			assert.Equal(t, c.want, ErrorTypeOf(fmt.Errorf("sysfs-i2c: %v", c.errno)), "periph's wrapping keeps only the text")
			assert.Equal(t, c.want, ErrorTypeOf(classify("oven_temp", fmt.Errorf("sysfs-i2c: %v", c.errno))))
		})
	}
}
