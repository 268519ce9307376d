// Package loop is the control-loop runtime: one goroutine per loop, locked to its OS thread,
// waking at absolute deadlines to read its sensor, validate the reading, run its controller,
// apply interlocks and alarms, and write its actuators.
//
// The loop thread owns all of its state. Other goroutines talk to it only through lock-free
// structures: commands arrive in a single-producer ring (HTTP handlers serialize among
// themselves with a mutex the loop never takes), readings and counters leave through
// atomics, and events, cycle samples and sampled spans leave through rings that a drainer
// goroutine empties. The status snapshot for the API is published with TryLock, so a slow
// reader costs the API a slightly older snapshot and never costs the loop time.
package loop

import (
	"context"
	"time"

	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
)

// ReadValue reads an analog or temperature sensor (a hardware device method value).
type ReadValue func(ctx context.Context) (float64, error)

// ReadLevel reads a digital input.
type ReadLevel func(ctx context.Context) (bool, error)

// WriteDuty drives a duty output (0..1).
type WriteDuty func(ctx context.Context, duty float64) error

// WriteLevel drives a digital output.
type WriteLevel func(ctx context.Context, level bool) error

// Output is one actuator. Exactly one of Duty and Level is set; a Level output is on when
// the loop's output is at least 0.5.
type Output struct {
	// Name is the actuator's device name (the `actuator` attribute).
	Name  string
	Duty  WriteDuty
	Level WriteLevel
	// Safe is the value written whenever the loop forces its outputs safe.
	Safe float64
}

func (o *Output) write(ctx context.Context, v float64) error {
	if o.Duty != nil {
		return o.Duty(ctx, v)
	}
	return o.Level(ctx, v >= 0.5)
}

// Interlock is a permissive: while its condition does not hold, the loop's outputs are
// forced safe whatever the controller says.
type Interlock struct {
	Name string
	// Exactly one source: a digital input, an analog/temperature input, or another loop's
	// process value.
	Level ReadLevel
	Value ReadValue
	// PeerPV returns another loop's process value (NaN while invalid) and the monotonic
	// time of the reading it came from.
	PeerPV func() (v float64, at int64)
	// StaleAfter is the oldest reading the interlock accepts: a sensor read that took longer,
	// or a peer loop's value older than this, does not hold. It must be positive.
	StaleAfter time.Duration
	// Want is the level a digital interlock needs (true = high, e.g. door closed).
	Want bool
	// Below and Above bound a value interlock; NaN leaves a side open.
	Below, Above float64
	// Latch raises a latched alarm named "interlock_<name>" when the interlock trips, so the
	// loop does not restart by itself when the condition comes back (no unexpected start-up).
	Latch bool
}

// AlarmKind is what an alarm watches.
type AlarmKind uint8

const (
	// AlarmHigh trips when the process value is above Limit.
	AlarmHigh AlarmKind = iota + 1
	// AlarmLow trips when the process value is below Limit.
	AlarmLow
	// AlarmDeviation trips when |pv − setpoint| exceeds Limit.
	AlarmDeviation
)

// AlarmSpec is one configured process alarm; every alarm latches.
type AlarmSpec struct {
	Name  string
	Kind  AlarmKind
	Limit float64
	// Delay is how long the condition must hold before the alarm raises (debounce; useful
	// for a deviation alarm during warm-up).
	Delay time.Duration
}

// ControllerKind selects the algorithm.
type ControllerKind uint8

const (
	// PID is a pid.Controller.
	PID ControllerKind = iota + 1
	// OnOff is an onoff.Controller.
	OnOff
)

// Spec is everything one loop needs. The extension builds it from its config and the open
// hardware devices.
type Spec struct {
	Name   string
	Period time.Duration

	// Input is the process value sensor.
	Input     ReadValue
	InputName string
	// ValidMin and ValidMax bound a valid reading.
	ValidMin, ValidMax float64
	// StaleAfter invalidates a reading that took longer than this to arrive, and the loop's
	// last valid reading once it is this old.
	StaleAfter time.Duration

	// Main is the controlled actuator (heater SSR duty, motor speed).
	Main Output
	// Enable, when set, is a digital actuator that is on while the output is above 0
	// (motor enable); its Safe is normally 0.
	Enable *Output

	Kind  ControllerKind
	PID   *pid.Controller
	OnOff *onoff.Controller

	Setpoint, SetpointMin, SetpointMax float64
	// MaxRate limits how fast the working setpoint follows a new setpoint (units/s, 0 =
	// step). It is the configured bound: an operator's max_rate can only be slower.
	MaxRate float64
	// Speed scales the output of a motor loop at start (SET_MOTOR speed, 0..1; 0 means 1).
	Speed float64
	// OutputMin and OutputMax are the configured output limits (within 0..1; both 0 means
	// 0..1). No mode, command or restored state takes the output outside them; the
	// operator's output_max can only narrow OutputMax.
	OutputMin, OutputMax float64
	// Mode is the mode at start.
	Mode pid.Mode
	// Operator, when set, is the operator's state restored after a restart; it replaces
	// Setpoint, Speed, Mode and DryRun (NaN fields keep the configuration) and is narrowed
	// by the configured limits like a command.
	Operator *OperatorState

	// Direction is +1 when more output raises the process value (heating, a motor) and -1
	// when it lowers it (cooling); the plausibility check expects the value to move that way.
	Direction float64
	// StuckAfter invalidates the input once its readings have stayed within StuckTolerance
	// of each other for this long (a frozen sensor); 0 turns the check off.
	StuckAfter     time.Duration
	StuckTolerance float64
	// SaturationTime and MinResponse are the plausibility check: while the output has been
	// at its upper limit for SaturationTime, the process value must have moved at least
	// MinResponse in Direction, or the latched alarm "plausibility" trips (a stuck sensor,
	// a dead heater element, a broken motor). SaturationTime 0 turns the check off.
	SaturationTime time.Duration
	MinResponse    float64

	Interlocks []Interlock
	Alarms     []AlarmSpec
	// Restored are latched alarm names read back from the latch file.
	Restored []string
	// DryRun starts the loop in dry run: it reads and computes, but its actuators keep the
	// safe state written at start; every write it would have made is counted instead.
	DryRun bool

	// TraceEvery samples one cycle in TraceEvery as a span with its phases (0 = none).
	TraceEvery int
	// PreciseWindow is the raw final leg of each sleep (see schedule.SleepUntilWindow); 0
	// sleeps the runtime's way only. It is turned off when GOMAXPROCS is 1.
	PreciseWindow time.Duration
	// PreciseWindowYield passes through the scheduler at the start of the window (see
	// schedule.Options.Yield).
	PreciseWindowYield bool
	// Realtime asks for SCHED_FIFO at RealtimePriority and mlockall.
	Realtime         bool
	RealtimePriority int
}

// OperatorState is what an operator sets through the command API: it is retentive (the
// extension persists it before the API answers and restores it after a warm restart).
type OperatorState struct {
	Mode      pid.Mode
	Setpoint  float64 // target setpoint
	MaxRate   float64 // ramp rate, units/s (0 = the configured ramp)
	OutputMax float64 // the operator's output limit (0..1)
	Speed     float64
	Manual    float64 // output in manual mode
	DryRun    bool
}

// Names of the alarms every loop has besides its configured ones, in index order.
const (
	AlarmSensorFault   = "sensor_fault"
	AlarmActuatorFault = "actuator_fault"
	AlarmPlausibility  = "plausibility"
)

// BuiltinAlarms are the alarms every loop has; configured alarms follow them.
var BuiltinAlarms = []string{AlarmSensorFault, AlarmActuatorFault, AlarmPlausibility}

const (
	alarmSensor = iota
	alarmActuator
	alarmPlausibility
	firstProcessAlarm
)

// InterlockAlarmName is the name of the latched alarm of a latching interlock.
func InterlockAlarmName(interlock string) string { return "interlock_" + interlock }
