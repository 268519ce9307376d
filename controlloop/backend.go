package controlloop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/alarm"
	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/internal/telemetry"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

var _ api.Backend = (*controlLoop)(nil)

// loopStatus is a loop as GET /api/v1/loops shows it.
type loopStatus struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Mode      string   `json:"mode"`
	Unit      string   `json:"unit,omitempty"`
	PV        *float64 `json:"process_value"`
	Setpoint  float64  `json:"setpoint"`
	Working   *float64 `json:"working_setpoint,omitempty"`
	Output    float64  `json:"output"`
	SafeState bool     `json:"safe_state"`
	Speed     float64  `json:"speed"`
	OutputMax float64  `json:"output_max"`
	Cycle     uint64   `json:"cycle"`
	DryRun    bool     `json:"dry_run"`
	// DryRunOutput is what the loop would write to its main actuator in dry run.
	DryRunOutput *float64          `json:"dry_run_output,omitempty"`
	Alarms       []alarmStatus     `json:"alarms"`
	Interlocks   []interlockStatus `json:"interlocks"`
	// DevicesNotOpen are the loop's devices that could not be opened, with why: the loop
	// is held safe by sensor_fault, actuator_fault or an interlock meanwhile.
	DevicesNotOpen []deviceFault `json:"devices_not_open,omitempty"`
}

type alarmStatus struct {
	Name    string `json:"name"`
	Active  bool   `json:"active"`
	Latched bool   `json:"latched"`
}

type interlockStatus struct {
	Name  string `json:"name"`
	Holds bool   `json:"holds"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func (e *controlLoop) status(l *loop.Loop) loopStatus {
	s := l.Status()
	// A latch is shown once it is on disk, so that what an operator sees survives a restart.
	s.Latched = e.durableLatched(l.Name(), s.Latched)
	lc := e.cfgByNm[l.Name()]
	st := loopStatus{
		Name: l.Name(), Mode: s.Mode.String(), Unit: lc.Unit, PV: finite(s.PV), Setpoint: s.Target,
		Working: finite(s.Setpoint), Output: s.Output, SafeState: s.Safe, Speed: s.Speed,
		OutputMax: s.OutputMax, Cycle: s.Cycle, Alarms: []alarmStatus{}, Interlocks: []interlockStatus{},
		DryRun: s.DryRun, DevicesNotOpen: e.notOpen(lc),
	}
	if s.DryRun {
		st.DryRunOutput = finite(s.DryRunOutput)
	}
	for i, n := range l.AlarmNames() {
		bit := uint64(1) << uint(i)
		st.Alarms = append(st.Alarms, alarmStatus{Name: n, Active: s.Active&bit != 0, Latched: s.Latched&bit != 0})
	}
	for i, il := range l.Spec().Interlocks {
		st.Interlocks = append(st.Interlocks, interlockStatus{Name: il.Name, Holds: s.Interlocks&(1<<uint(i)) != 0})
	}
	switch {
	case !s.Running:
		st.State = "stopped"
	case s.Latched != 0:
		st.State = "tripped"
	case !s.Valid:
		st.State = "sensor_fault"
	case s.DryRun:
		st.State = "dry_run"
	case s.Safe:
		st.State = "interlocked"
	case s.Mode == pid.Off:
		st.State = "off"
	default:
		st.State = "running"
	}
	return st
}

// Loops implements api.Backend.
func (e *controlLoop) Loops() map[string]api.LoopInfo { return e.infos }

// Statuses implements api.Backend.
func (e *controlLoop) Statuses() []any {
	out := make([]any, 0, len(e.loops))
	for _, l := range e.loops {
		out = append(out, e.status(l))
	}
	return out
}

// Status implements api.Backend.
func (e *controlLoop) Status(name string) (any, bool) {
	l, ok := e.byName[name]
	if !ok {
		return nil, false
	}
	return e.status(l), true
}

func ptrOr(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// Execute implements api.Backend: it turns the validated request into a loop command.
func (e *controlLoop) Execute(_ context.Context, req *api.Request) error {
	if req.Command == api.CmdClearDryRun {
		return e.clearDryRun()
	}
	l, ok := e.byName[req.Loop]
	if !ok {
		return &api.StatusError{Code: http.StatusNotFound, Err: fmt.Errorf("no loop named %q", req.Loop)}
	}
	cmd := loop.Command{
		Setpoint: ptrOr(req.Setpoint), MaxRate: ptrOr(req.MaxRate), OutputMax: ptrOr(req.OutputMax),
		Speed: ptrOr(req.Speed), Manual: ptrOr(req.Output), MotorOn: -1, Alarm: -1,
	}
	switch req.Command {
	case api.CmdSetTempSettings:
		cmd.Kind = loop.CmdSetTempSettings
	case api.CmdSetMotor:
		cmd.Kind = loop.CmdSetMotor
		if req.On != nil {
			cmd.MotorOn = 0
			if *req.On {
				cmd.MotorOn = 1
			}
		}
	case api.CmdAckAlarm:
		cmd.Kind = loop.CmdAckAlarm
		if req.Alarm != nil {
			cmd.Alarm = l.AlarmIndex(*req.Alarm)
		}
	case api.CmdSetMode:
		cmd.Kind = loop.CmdSetMode
		m, err := pid.ParseMode(*req.Mode)
		if err != nil {
			return &api.StatusError{Code: http.StatusBadRequest, Err: err}
		}
		cmd.Mode = m
	}
	// A command waits for the loop's next cycle; a slow loop gets more time.
	timeout := max(e.cfg.API.CommandTimeout, 3*l.Spec().Period)
	err := l.Submit(cmd, timeout)
	switch {
	case err == nil:
		return e.persistCommand()
	case errors.Is(err, loop.ErrHeld):
		return &api.StatusError{Code: http.StatusConflict, Err: fmt.Errorf("%s: %w", e.heldReason(l), err)}
	case errors.Is(err, alarm.ErrConditionActive), errors.Is(err, alarm.ErrNotLatched), errors.Is(err, loop.ErrDryRun):
		return &api.StatusError{Code: http.StatusConflict, Err: err}
	case errors.Is(err, loop.ErrNoMotor), errors.Is(err, alarm.ErrUnknownAlarm):
		return &api.StatusError{Code: http.StatusBadRequest, Err: err}
	case errors.Is(err, loop.ErrNoAnswer):
		return &api.StatusError{Code: http.StatusGatewayTimeout, Err: err}
	default:
		return &api.StatusError{Code: http.StatusServiceUnavailable, Err: err}
	}
}

// clearDryRun ends dry run on every loop; each goes to mode off in its next cycle and
// writes its actuators from then on. Every loop is asked even when one fails, so that one
// stopped loop does not keep the others in dry run.
func (e *controlLoop) clearDryRun() error {
	var errs []error
	for _, l := range e.loops {
		timeout := max(e.cfg.API.CommandTimeout, 3*l.Spec().Period)
		if err := l.Submit(loop.Command{Kind: loop.CmdClearDryRun}, timeout); err != nil {
			errs = append(errs, fmt.Errorf("loop %q: %w", l.Name(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, loop.ErrNoAnswer) {
			code = http.StatusGatewayTimeout
		}
		return &api.StatusError{Code: code, Err: errors.Join(err, e.persistCommand())}
	}
	return e.persistCommand()
}

// persistCommand puts the state a command left on disk before the API answers: a 200
// means the setting survives a restart.
func (e *controlLoop) persistCommand() error {
	if err := e.saveState(true); err != nil {
		e.log.Error("a command was applied but could not be persisted; a restart would forget it", zap.Error(err))
		return &api.StatusError{Code: http.StatusInternalServerError, Err: fmt.Errorf("applied, but not persisted to latch_file (a restart would forget it): %w", err)}
	}
	return nil
}

// heldReason names what holds a loop's outputs safe: its latched alarms, the interlocks
// that do not hold, an invalid reading.
func (e *controlLoop) heldReason(l *loop.Loop) string {
	s := l.Status()
	var parts []string
	if names := l.LatchedNames(); len(names) > 0 {
		parts = append(parts, "latched alarms "+strings.Join(names, ", ")+" (ACK_ALARM once their condition is gone)")
	}
	var ils []string
	for i, il := range l.Spec().Interlocks {
		if s.Interlocks&(1<<uint(i)) == 0 {
			ils = append(ils, il.Name)
		}
	}
	if len(ils) > 0 {
		parts = append(parts, "interlocks not holding "+strings.Join(ils, ", "))
	}
	if !s.Valid {
		parts = append(parts, "invalid reading of "+l.Spec().InputName)
	}
	for _, f := range e.notOpen(e.cfgByNm[l.Name()]) {
		parts = append(parts, fmt.Sprintf("device %s not open (%s)", f.Name, f.Error))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("loop %q is held safe", l.Name())
	}
	return fmt.Sprintf("loop %q is held safe by %s", l.Name(), strings.Join(parts, "; "))
}

// SimEnabled implements api.Backend.
func (e *controlLoop) SimEnabled() bool {
	return e.session != nil && e.session.BackendName() == hardware.BackendSim
}

// Fault implements api.Backend.
func (e *controlLoop) Fault(req *api.FaultRequest) error {
	faults := e.session.Faults()
	if req.Clear {
		_, err := faults.Clear(req.Device)
		return err
	}
	spec := hardware.FaultSpec{
		Device: req.Device, Kind: hardware.FaultKind(req.Kind),
		Duration: time.Duration(req.Duration), Delay: time.Duration(req.Delay),
	}
	if req.Value != nil {
		spec.Value = *req.Value
	}
	return faults.Inject(spec)
}

// RecordCommand implements api.Backend.
func (e *controlLoop) RecordCommand(rec telemetry.CommandRecord) { e.tel.RecordCommand(rec) }
