package controlloop

import (
	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/internal/confenum"
)

// The enum-like keys are typed values: UnmarshalText refuses an unknown value while the
// configuration is decoded, so that the collector's error names the key, and Validate
// checks a configuration built in code with the same words. Start maps a value through its
// table without an error path: whatever reaches it was checked once.

// RestartMode is what a restart keeps of the operator's settings, in the words PLC users
// know: a warm restart keeps the retentive memory, a cold restart starts from the program.
type RestartMode string

const (
	// RestartWarm restores the operator's mode, setpoints, ramp, output limit, speed,
	// manual output and dry run. It is the default: what an operator narrowed (a lower
	// setpoint, a lower output limit, a loop switched off) must not widen back to the
	// configuration because the power blinked.
	RestartWarm RestartMode = "warm"
	// RestartCold starts every loop from the configuration, except that a loop the
	// operator switched off stays off until an operator starts it.
	RestartCold RestartMode = "cold"
)

var restartModes = map[RestartMode]bool{RestartWarm: true, RestartCold: true}

const restartChoices = "warm, cold"

// UnmarshalText refuses anything but warm and cold.
func (r *RestartMode) UnmarshalText(b []byte) error {
	return confenum.Unmarshal(r, b, restartModes, restartChoices)
}

// LoopMode is a loop's mode at start (loops[].mode); empty is auto.
type LoopMode string

// Loop modes, the names the command API uses too.
const (
	ModeAuto   LoopMode = "auto"
	ModeManual LoopMode = "manual"
	ModeOff    LoopMode = "off"
)

var loopModes = map[LoopMode]pid.Mode{"": pid.Auto, ModeAuto: pid.Auto, ModeManual: pid.Manual, ModeOff: pid.Off}

const modeChoices = "auto, manual, off"

// UnmarshalText refuses an unknown mode.
func (m *LoopMode) UnmarshalText(b []byte) error {
	return confenum.Unmarshal(m, b, loopModes, modeChoices)
}

// OnOffAction says which side of the setpoint switches an on/off output on
// (loops[].controller.onoff.action); empty is heating.
type OnOffAction string

// On/off actions. direct and reverse are the names of the same actions in process
// control, accepted as aliases.
const (
	ActionHeating OnOffAction = "heating"
	ActionCooling OnOffAction = "cooling"
	ActionDirect  OnOffAction = "direct"
	ActionReverse OnOffAction = "reverse"
)

var onOffActions = map[OnOffAction]onoff.Action{
	"": onoff.Heating, ActionHeating: onoff.Heating, ActionDirect: onoff.Heating,
	ActionCooling: onoff.Cooling, ActionReverse: onoff.Cooling,
}

const actionChoices = "heating, cooling"

// UnmarshalText refuses an unknown action.
func (a *OnOffAction) UnmarshalText(b []byte) error {
	return confenum.Unmarshal(a, b, onOffActions, actionChoices)
}

// AlarmType is what a process alarm watches (loops[].alarms[].type).
type AlarmType string

// Alarm types.
const (
	AlarmHigh      AlarmType = "high"
	AlarmLow       AlarmType = "low"
	AlarmDeviation AlarmType = "deviation"
)

var alarmTypes = map[AlarmType]loop.AlarmKind{AlarmHigh: loop.AlarmHigh, AlarmLow: loop.AlarmLow, AlarmDeviation: loop.AlarmDeviation}

const alarmChoices = "high, low, deviation (sensor faults always raise the built-in sensor_fault alarm)"

// UnmarshalText refuses an unknown alarm type.
func (t *AlarmType) UnmarshalText(b []byte) error {
	return confenum.Unmarshal(t, b, alarmTypes, alarmChoices)
}
