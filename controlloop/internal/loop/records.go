package loop

import (
	"errors"

	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventAlarm is an alarm transition (Alarm, Transition).
	EventAlarm EventKind = iota + 1
	// EventSensorFault is an invalid reading (ErrType, Value); one per fault episode.
	EventSensorFault
	// EventActuatorError is a failed write (Output index, ErrType).
	EventActuatorError
	// EventInterlock is an interlock changing state (Interlock index, Holds).
	EventInterlock
	// EventSafe is the loop entering (Holds=true) or leaving the forced safe state.
	EventSafe
	// EventPanic is a recovered panic: outputs were forced safe and the loop stopped.
	EventPanic
	// EventOverrun is a cycle that took longer than its period (Value = duration in s).
	EventOverrun
	// EventDryRunWrite is a write that dry run held back (Output index, Value); recorded
	// when the held-back value changes, not every cycle.
	EventDryRunWrite
	// EventDryRunCleared is the operator ending dry run: the loop is now in mode off and
	// writes its actuators again.
	EventDryRunCleared
)

// Event is a loop event as the loop thread records it: plain values only, so that
// recording it copies a few words into a ring and allocates nothing. Names are resolved by
// the drainer from the indices.
type Event struct {
	Kind       EventKind
	Time       int64 // unix ns
	Cycle      uint64
	Alarm      int16
	Index      int16 // output or interlock index
	Transition uint8 // alarm.Transition
	Holds      bool
	ErrType    ErrType
	Value      float64
}

// ErrType classifies device errors without strings on the loop thread.
type ErrType uint8

// Error types, matching hardware.ErrorType plus the loop's own checks.
const (
	ErrNone ErrType = iota
	ErrTimeout
	ErrNack
	ErrOutOfRange
	ErrInvalid
	ErrStale
	ErrIO
	ErrOther
)

// String is the error.type attribute value.
func (e ErrType) String() string {
	switch e {
	case ErrTimeout:
		return string(hardware.ErrorTimeout)
	case ErrNack:
		return string(hardware.ErrorNack)
	case ErrOutOfRange:
		return string(hardware.ErrorOutOfRange)
	case ErrInvalid:
		return string(hardware.ErrorInvalid)
	case ErrStale:
		return string(hardware.ErrorStale)
	case ErrIO:
		return string(hardware.ErrorIO)
	case ErrOther:
		return "other"
	}
	return ""
}

// NumErrTypes bounds the per-output error counters.
const NumErrTypes = int(ErrOther) + 1

// classify maps a device error to an ErrType without allocating on the common paths.
func classify(err error) ErrType {
	if err == nil {
		return ErrNone
	}
	if he := asHardwareError(err); he != nil {
		switch he.Type {
		case hardware.ErrorTimeout:
			return ErrTimeout
		case hardware.ErrorNack:
			return ErrNack
		case hardware.ErrorOutOfRange:
			return ErrOutOfRange
		case hardware.ErrorInvalid:
			return ErrInvalid
		case hardware.ErrorStale:
			return ErrStale
		case hardware.ErrorIO:
			return ErrIO
		}
		return ErrOther
	}
	switch hardware.ErrorTypeOf(err) {
	case hardware.ErrorTimeout:
		return ErrTimeout
	case hardware.ErrorNack:
		return ErrNack
	case hardware.ErrorIO:
		return ErrIO
	}
	return ErrOther
}

// asHardwareError walks the wrap chain by hand: errors.As takes its target as `any`, which
// moves the target to the heap on every call, and this runs on the loop thread.
func asHardwareError(err error) *hardware.Error {
	for err != nil {
		if he, ok := err.(*hardware.Error); ok {
			return he
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return nil
		}
		err = u.Unwrap()
	}
	return nil
}

// Sample is one cycle's timing, for the duration and lateness histograms.
type Sample struct {
	Duration int64 // ns from wake-up to the end of the cycle
	Lateness int64 // ns from deadline to wake-up
	// Runtime is the runtime's part of Lateness, ns from the kernel's wake-up of the raw leg
	// to the wake-up (schedule.Tick.Kernel); -1 for a cycle without a raw leg.
	Runtime int64
}

// CycleSpan is a sampled cycle with the end of each phase (unix ns).
type CycleSpan struct {
	Start, Read, Validate, Compute, Write int64
	Cycle                                 uint64
	PV, Setpoint, Output                  float64
	Safe                                  bool
	ErrType                               ErrType
}

// CommandKind is the command API's verb.
type CommandKind uint8

const (
	// CmdSetTempSettings changes setpoint, ramp rate or output cap.
	CmdSetTempSettings CommandKind = iota + 1
	// CmdSetMotor switches a motor loop on or off and sets its speed.
	CmdSetMotor
	// CmdAckAlarm acknowledges one alarm (Alarm >= 0) or all (Alarm = -1).
	CmdAckAlarm
	// CmdSetMode sets auto, manual (with Manual as output) or off.
	CmdSetMode
	// CmdClearDryRun ends dry run: the loop goes to mode off and writes its actuators again.
	CmdClearDryRun
)

// Command is a validated command for one loop. Optional numbers are NaN when absent.
type Command struct {
	Kind      CommandKind
	Setpoint  float64
	MaxRate   float64
	OutputMax float64
	MotorOn   int8 // -1 unchanged, 0 off, 1 on
	Speed     float64
	Alarm     int
	Mode      pid.Mode
	Manual    float64
	reply     chan error
}

// Errors the loop returns to a command; the API maps them to HTTP statuses.
var (
	ErrLoopStopped  = errors.New("loop is not running")
	ErrCommandQueue = errors.New("command queue of the loop is full; retry")
	ErrNoMotor      = errors.New("loop has no motor enable output")
	ErrNoAnswer     = errors.New("loop did not answer in time; the command may still be applied")
	// ErrDryRun refuses to arm a loop (mode auto, motor on) while dry run holds its outputs.
	ErrDryRun = errors.New("the control loop is in dry run: clear it with CLEAR_DRY_RUN once the actuators are connected and checked, then switch to auto")
	// ErrHeld refuses a command that would energize an output while the loop holds its
	// outputs safe (a latched alarm, an interlock that does not hold, an invalid reading):
	// it is never kept to take effect at re-arming.
	ErrHeld = errors.New("the loop holds its outputs safe; remove the cause and acknowledge its alarms, then send the command again")
)
