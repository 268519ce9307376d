package loop

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/alarm"
	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/hardwaretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// doubles are a loop's devices: a sensor, a door switch and two actuators whose every
// write is recorded.
type doubles struct {
	sensor *hardwaretest.TemperatureInput
	door   *hardwaretest.DigitalInput
	heater *hardwaretest.DutyOutput
	enable *hardwaretest.DigitalOutput
}

// newDoubles returns devices whose sensor reads pv and whose door reads door.
func newDoubles(pv float64, door bool) *doubles {
	d := &doubles{
		sensor: hardwaretest.NewTemperatureInput(hardware.Info{Name: "oven_temp", Kind: hardware.KindMCP9808}),
		door:   hardwaretest.NewDigitalInput(hardware.Info{Name: "door_closed", Kind: hardware.KindGPIOInput}),
		heater: hardwaretest.NewDutyOutput(hardware.Info{Name: "heater", Kind: hardware.KindDutyOutput}),
		enable: hardwaretest.NewDigitalOutput(hardware.Info{Name: "motor_enable", Kind: hardware.KindGPIOOutput}),
	}
	d.sensor.Set(pv)
	d.door.SetLevel(door)
	return d
}

// get returns the main actuator's duty and the enable output's level.
func (d *doubles) get() (duty float64, enable bool) { return d.heater.Duty(), d.enable.Level() }

func pidSpec(t *testing.T, io *doubles) Spec {
	t.Helper()
	c, err := pid.New(pid.Gains{Kp: 0.5, Ki: 0.1}, pid.Limits{OutMin: 0, OutMax: 1})
	require.NoError(t, err)
	return Spec{
		Name: "oven", Period: 10 * time.Millisecond,
		Input: io.sensor.ReadTemperature, InputName: "oven_temp", ValidMin: -20, ValidMax: 300,
		Main: Output{Name: "heater", Duty: io.heater.WriteDuty, Safe: 0},
		Kind: PID, PID: c,
		Setpoint: 100, SetpointMin: 0, SetpointMax: 250,
		Alarms: []AlarmSpec{{Name: "high_limit", Kind: AlarmHigh, Limit: 200}},
	}
}

func newLoop(t *testing.T, s Spec) *Loop {
	t.Helper()
	l, err := New(s, zap.NewNop(), nil)
	require.NoError(t, err)
	return l
}

// tick runs one cycle as the loop thread would, on time.
func tick(l *Loop) {
	now := schedule.Now()
	l.Cycle(schedule.Tick{Deadline: now, Woke: now})
}

// command runs cmd through the command ring in the next cycle and returns the loop's answer.
func command(t *testing.T, l *Loop, cmd Command) error {
	t.Helper()
	cmd.reply = make(chan error, 1)
	require.True(t, l.cmds.Push(&cmd))
	tick(l)
	select {
	case err := <-cmd.reply:
		return err
	default:
		t.Fatal("the loop did not answer in its cycle")
		return nil
	}
}

func ack(i int) Command {
	return Command{Kind: CmdAckAlarm, Alarm: i, Setpoint: math.NaN(), MaxRate: math.NaN(), OutputMax: math.NaN(), Speed: math.NaN(), Manual: math.NaN(), MotorOn: -1}
}

func TestInvalidReadingForcesSafeInSameCycleAndLatches(t *testing.T) {
	faults := []struct {
		name string
		set  func(*doubles)
		want ErrType
	}{
		{"device error", func(d *doubles) { d.sensor.SetErr(&hardware.Error{Device: "oven_temp", Type: hardware.ErrorTimeout}) }, ErrTimeout},
		{"NaN", func(d *doubles) { d.sensor.Set(math.NaN()) }, ErrInvalid},
		{"Inf", func(d *doubles) { d.sensor.Set(math.Inf(1)) }, ErrInvalid},
		{"above range", func(d *doubles) { d.sensor.Set(301) }, ErrOutOfRange},
		{"below range", func(d *doubles) { d.sensor.Set(-21) }, ErrOutOfRange},
		{"stuck (hardware stale)", func(d *doubles) { d.sensor.SetErr(&hardware.Error{Device: "oven_temp", Type: hardware.ErrorStale}) }, ErrStale},
	}
	for _, tt := range faults {
		t.Run(tt.name, func(t *testing.T) {
			io := newDoubles(20, false)
			l := newLoop(t, pidSpec(t, io))
			tick(l)
			duty, _ := io.get()
			require.Positive(t, duty, "the heater is on below the setpoint")
			require.False(t, l.Safe())

			tt.set(io)
			tick(l)
			duty, _ = io.get()
			assert.Zero(t, duty, "outputs are safe in the cycle that saw the fault")
			assert.True(t, l.Safe())
			assert.True(t, l.alarms.At(0).Latched(), "sensor_fault latched")

			var ev Event
			var sawFault bool
			for l.events.Pop(&ev) {
				if ev.Kind == EventSensorFault {
					sawFault = true
					assert.Equal(t, tt.want, ev.ErrType)
				}
			}
			assert.True(t, sawFault)
		})
	}
}

func TestSlowReadIsStale(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.StaleAfter = time.Millisecond
	s.Input = func(ctx context.Context) (float64, error) {
		time.Sleep(5 * time.Millisecond) // a slow bus: the reading is old when it arrives
		return io.sensor.ReadTemperature(ctx)
	}
	l := newLoop(t, s)
	tick(l)
	assert.True(t, l.Safe())
	assert.True(t, l.alarms.At(0).Latched())
}

func TestAckClearsLatchOnlyAfterConditionGone(t *testing.T) {
	io := newDoubles(20, false)
	l := newLoop(t, pidSpec(t, io))
	tick(l)
	io.sensor.Set(math.NaN())
	tick(l)
	require.True(t, l.Safe())

	err := command(t, l, ack(0))
	require.ErrorIs(t, err, alarm.ErrConditionActive)
	assert.True(t, l.Safe(), "an ack while the fault is present changes nothing")

	io.sensor.Set(20)
	for range 5 {
		tick(l)
	}
	duty, _ := io.get()
	assert.Zero(t, duty, "the reading is good again but the latch keeps the outputs safe")
	assert.True(t, l.Safe())

	require.NoError(t, command(t, l, ack(-1)))
	assert.False(t, l.Safe(), "after the ack the loop returns to auto in the same cycle")
	duty, _ = io.get()
	assert.Positive(t, duty)
	assert.Equal(t, pid.Auto, l.Mode())
}

func TestProcessAlarmLatchesWithDelay(t *testing.T) {
	io := newDoubles(210, false)
	s := pidSpec(t, io)
	s.Alarms[0].Delay = 30 * time.Millisecond // three periods
	l := newLoop(t, s)
	for range 3 {
		tick(l)
	}
	hi := l.AlarmIndex("high_limit")
	assert.False(t, l.alarms.At(hi).Latched(), "the delay debounces the condition")
	tick(l)
	assert.True(t, l.alarms.At(hi).Latched())
	assert.True(t, l.Safe())
	io.sensor.Set(150)
	tick(l)
	require.NoError(t, command(t, l, ack(l.AlarmIndex("high_limit"))))
	assert.False(t, l.Safe())
}

func TestRestoredLatchKeepsOutputsSafe(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.Restored = []string{AlarmSensorFault, "alarm_removed_from_config"}
	l := newLoop(t, s)
	assert.True(t, l.Safe())
	for range 3 {
		tick(l)
	}
	duty, _ := io.get()
	assert.Zero(t, duty, "a latch from before the restart holds the outputs safe")
	require.NoError(t, command(t, l, ack(0)))
	duty, _ = io.get()
	assert.Positive(t, duty)
}

func motorSpec(io *doubles, latch bool) Spec {
	return Spec{
		Name: "conveyor", Period: 10 * time.Millisecond,
		Input: io.sensor.ReadTemperature, InputName: "tach", ValidMin: 0, ValidMax: 4000,
		Main:   Output{Name: "motor_speed", Duty: io.heater.WriteDuty},
		Enable: &Output{Name: "motor_enable", Level: io.enable.WriteLevel},
		Kind:   OnOff, OnOff: &onoff.Controller{Hysteresis: 100},
		Setpoint: 1500, SetpointMin: 0, SetpointMax: 3000, Speed: 0.8,
		Interlocks: []Interlock{{Name: "door_closed", Level: io.door.ReadLevel, Want: true, Below: math.NaN(), Above: math.NaN(), Latch: latch}},
	}
}

func TestInterlockOverridesController(t *testing.T) {
	io := newDoubles(0, true)
	l := newLoop(t, motorSpec(io, false))
	tick(l)
	duty, en := io.get()
	require.InDelta(t, 0.8, duty, 1e-9, "below the band the motor runs at the commanded speed")
	require.True(t, en)

	io.door.SetLevel(false)
	tick(l)
	duty, en = io.get()
	assert.Zero(t, duty, "door open: the interlock stops the motor though the controller wants it on")
	assert.False(t, en)
	assert.True(t, l.Safe())

	io.door.SetLevel(true)
	tick(l)
	_, en = io.get()
	assert.True(t, en, "a non-latching interlock releases with its condition")
}

func TestLatchingInterlockNeedsAck(t *testing.T) {
	io := newDoubles(0, true)
	l := newLoop(t, motorSpec(io, true))
	tick(l)
	io.door.SetLevel(false)
	tick(l)
	io.door.SetLevel(true)
	tick(l)
	_, en := io.get()
	assert.False(t, en, "no unexpected restart when the door closes again")
	require.NoError(t, command(t, l, ack(l.AlarmIndex("interlock_door_closed"))))
	_, en = io.get()
	assert.True(t, en)
}

func TestPeerInterlock(t *testing.T) {
	ovenIO := newDoubles(20, false)
	oven := newLoop(t, pidSpec(t, ovenIO))
	io := newDoubles(0, true)
	s := motorSpec(io, false)
	s.Interlocks = []Interlock{{Name: "oven_hot", PeerPV: func() (float64, int64) { return oven.PV(), oven.PVAt() }, Below: math.NaN(), Above: 50}}
	conv := newLoop(t, s)
	tick(oven)
	tick(conv)
	_, en := io.get()
	assert.False(t, en, "the conveyor waits for the oven to be hot")
	ovenIO.sensor.Set(60)
	tick(oven)
	tick(conv)
	_, en = io.get()
	assert.True(t, en)
}

func TestActuatorFailureLatches(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	io2 := newDoubles(0, false)
	s.Enable = &Output{Name: "contactor", Level: io2.enable.WriteLevel}
	l := newLoop(t, s)
	tick(l)
	_, en := io2.get()
	require.True(t, en)
	io.heater.FailWrites(&hardware.Error{Device: "heater", Type: hardware.ErrorNack})
	tick(l)
	assert.True(t, l.alarms.At(1).Latched())
	assert.True(t, l.Safe(), "safe in the cycle of the failed write")
	_, en = io2.get()
	assert.False(t, en, "the other actuator is made safe at once")
	assert.Equal(t, uint64(1), l.ActuatorErrors(0, ErrNack))
	io.heater.FailWrites(nil)
	tick(l)
	duty, _ := io.get()
	assert.Zero(t, duty, "after a failed write the loop holds safe until acknowledged")
}

func TestModes(t *testing.T) {
	io := newDoubles(20, false)
	l := newLoop(t, pidSpec(t, io))
	tick(l)
	nan := math.NaN()
	require.NoError(t, command(t, l, Command{Kind: CmdSetMode, Mode: pid.Manual, Manual: 0.3, Setpoint: nan, MaxRate: nan, OutputMax: nan, Speed: nan}))
	duty, _ := io.get()
	assert.InDelta(t, 0.3, duty, 1e-9)
	require.NoError(t, command(t, l, Command{Kind: CmdSetMode, Mode: pid.Off, Setpoint: nan, MaxRate: nan, OutputMax: nan, Speed: nan, Manual: nan}))
	duty, _ = io.get()
	assert.Zero(t, duty)
	assert.False(t, l.Safe(), "off is the operator's choice, not a forced safe state")
	require.NoError(t, command(t, l, Command{Kind: CmdSetTempSettings, Setpoint: 150, MaxRate: nan, OutputMax: 0.5, Speed: nan, Manual: nan}))
	assert.Equal(t, 150.0, l.Setpoint())
	err := command(t, l, Command{Kind: CmdSetMotor, MotorOn: 1, Setpoint: nan, Speed: nan})
	assert.ErrorIs(t, err, ErrNoMotor)
}

func TestSetpointRamp(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.MaxRate = 100 // per second: 1 unit per 10 ms cycle
	l := newLoop(t, s)
	for range 5 {
		tick(l)
	}
	assert.InDelta(t, 25, l.Status().Setpoint, 1e-9, "the working setpoint ramps from the measurement")
	assert.Equal(t, 100.0, l.Status().Target)
}

func TestOverrunCounted(t *testing.T) {
	io := newDoubles(20, false)
	l := newLoop(t, pidSpec(t, io))
	now := schedule.Now()
	l.Cycle(schedule.Tick{Deadline: now - int64(time.Second), Woke: now})
	ok, overrun, _ := l.Counters()
	assert.Zero(t, ok)
	assert.Equal(t, uint64(1), overrun)
}

func TestCycleDoesNotAllocate(t *testing.T) {
	io := newDoubles(20, true)
	s := pidSpec(t, io)
	s.TraceEvery = 2
	s.Interlocks = []Interlock{{Name: "door", Level: io.door.ReadLevel, Want: true, Below: math.NaN(), Above: math.NaN()}}
	l := newLoop(t, s)
	var sink Sample
	allocs := testing.AllocsPerRun(500, func() {
		tick(l)
		l.samples.Pop(&sink) // keep the ring from filling, as the drainer would
	})
	assert.Zero(t, allocs)
	// A faulted cycle (error value from a device) must not allocate either.
	io.sensor.SetErr(errFault)
	allocs = testing.AllocsPerRun(100, func() { tick(l) })
	assert.Zero(t, allocs)
}

var errFault = &hardware.Error{Device: "oven_temp", Type: hardware.ErrorNack, Err: errors.New("nack")}

func TestRunStartsSafeStopsSafe(t *testing.T) {
	io := newDoubles(20, false)
	io.heater.Preset(0.7)
	l := newLoop(t, pidSpec(t, io))
	require.NoError(t, l.Start())
	assert.Eventually(t, func() bool { d, _ := io.get(); return d > 0 && d != 0.7 }, 5*time.Second, time.Millisecond)
	require.NoError(t, l.Stop(5*time.Second))
	duty, _ := io.get()
	assert.Zero(t, duty, "shutdown leaves the heater off")
	assert.True(t, l.Safe())
	assert.False(t, l.Running())
}

func TestPanicForcesSafeAndStops(t *testing.T) {
	io := newDoubles(20, false)
	l := newLoop(t, pidSpec(t, io))
	require.NoError(t, l.Start())
	assert.Eventually(t, func() bool { d, _ := io.get(); return d > 0 }, 5*time.Second, time.Millisecond)
	io.sensor.OnRead(func(context.Context) (float64, error) { panic("driver bug") })
	select {
	case <-l.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("loop did not stop after the panic")
	}
	duty, _ := io.get()
	assert.Zero(t, duty, "a panic leaves the outputs safe")
	assert.True(t, l.Safe())
	var ev Event
	var sawPanic bool
	for l.events.Pop(&ev) {
		sawPanic = sawPanic || ev.Kind == EventPanic
	}
	assert.True(t, sawPanic)
	assert.ErrorIs(t, l.Submit(ack(-1), time.Second), ErrLoopStopped)
}

func TestSubmitThroughRunningLoop(t *testing.T) {
	io := newDoubles(20, false)
	l := newLoop(t, pidSpec(t, io))
	require.NoError(t, l.Start())
	defer func() { require.NoError(t, l.Stop(5*time.Second)) }()
	nan := math.NaN()
	require.NoError(t, l.Submit(Command{Kind: CmdSetTempSettings, Setpoint: 120, MaxRate: nan, OutputMax: nan, Speed: nan, Manual: nan}, 5*time.Second))
	assert.Equal(t, 120.0, l.Setpoint())
}

func TestNewRejects(t *testing.T) {
	io := newDoubles(0, false)
	s := pidSpec(t, io)
	s.Period = 0
	_, err := New(s, nil, nil)
	require.ErrorContains(t, err, "period must be positive")
	s = pidSpec(t, io)
	s.PID = nil
	_, err = New(s, nil, nil)
	require.ErrorContains(t, err, "controller missing")
	s = pidSpec(t, io)
	s.Alarms = []AlarmSpec{{Name: "odd", Limit: 1}}
	_, err = New(s, nil, nil)
	require.ErrorContains(t, err, `alarm "odd" has no kind`)
}

func BenchmarkCycle(b *testing.B) {
	io := newDoubles(20, false)
	c, err := pid.New(pid.Gains{Kp: 0.5, Ki: 0.1}, pid.Limits{OutMin: 0, OutMax: 1})
	require.NoError(b, err)
	l, err := New(Spec{Name: "oven", Period: time.Millisecond, Input: io.sensor.ReadTemperature, ValidMin: -20, ValidMax: 300,
		Main: Output{Name: "heater", Duty: io.heater.WriteDuty}, Kind: PID, PID: c, Setpoint: 100, SetpointMax: 250}, nil, nil)
	require.NoError(b, err)
	var s Sample
	for b.Loop() {
		tick(l)
		l.samples.Pop(&s)
	}
}

// A dead heater element: the output saturates and the temperature does not move (the
// sensor's noise keeps the stuck check quiet). The plausibility alarm latches and holds
// the output safe.
func TestPlausibilityTripsOnSaturatedOutputWithoutResponse(t *testing.T) {
	io := newDoubles(20, false)
	s := pidSpec(t, io)
	s.SaturationTime = 200 * time.Millisecond // 20 periods
	s.MinResponse = 1
	l := newLoop(t, s)
	i := l.AlarmIndex(AlarmPlausibility)
	for n := 0; n < 21; n++ {
		io.sensor.Set(20 + 0.01*float64(n%2))
		tick(l)
	}
	require.False(t, l.alarms.At(i).Latched(), "not before the window has passed")
	for range 3 {
		tick(l)
	}
	require.True(t, l.alarms.At(i).Latched())
	duty, _ := io.get()
	assert.Zero(t, duty)

	// A heater that works moves the value: no alarm.
	io2 := newDoubles(20, false)
	l2 := newLoop(t, func() Spec { s := pidSpec(t, io2); s.SaturationTime, s.MinResponse = 200*time.Millisecond, 1; return s }())
	for n := range 60 {
		io2.sensor.Set(20 + 0.1*float64(n))
		tick(l2)
	}
	assert.False(t, l2.alarms.At(i).Latched())
}

// An interlock on another loop refuses a value older than its own staleness bound.
func TestPeerInterlockRefusesStaleValue(t *testing.T) {
	io := newDoubles(0, true)
	s := motorSpec(io, false)
	at := schedule.Now()
	s.Interlocks = []Interlock{{Name: "oven_hot", PeerPV: func() (float64, int64) { return 60, at }, Below: math.NaN(), Above: 50, StaleAfter: 50 * time.Millisecond}}
	conv := newLoop(t, s)
	tick(conv)
	_, en := io.get()
	require.True(t, en, "a fresh peer value holds")
	time.Sleep(60 * time.Millisecond) //nolint:forbidigo // the peer's value must age past the bound
	tick(conv)
	_, en = io.get()
	assert.False(t, en, "the same value, now older than stale_after, does not hold")
}

// A frozen sensor (readings within the tolerance for longer than StuckAfter) is invalid.
func TestStuckInputLatchesSensorFault(t *testing.T) {
	io := newDoubles(50, false)
	s := pidSpec(t, io)
	s.StuckAfter = 100 * time.Millisecond // 10 periods
	l := newLoop(t, s)
	for range 10 {
		tick(l)
	}
	require.False(t, l.alarms.At(0).Latched())
	tick(l)
	assert.True(t, l.alarms.At(0).Latched(), "sensor_fault after 10 periods of the same value")
}
