package loop

import (
	"math"
	"time"

	"github.com/fieldcol/fieldcol/controlloop/internal/alarm"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
)

// Submit hands a validated command to the loop and waits for the loop thread to apply it
// in its next cycle. Range checks against the configuration happen before (in the API);
// the loop answers with state conflicts (an alarm whose condition is still present).
func (l *Loop) Submit(cmd Command, timeout time.Duration) error {
	if !l.running.Load() {
		return ErrLoopStopped
	}
	cmd.reply = make(chan error, 1)
	l.cmdMu.Lock()
	ok := l.cmds.Push(&cmd)
	l.cmdMu.Unlock()
	if !ok {
		return ErrCommandQueue
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-cmd.reply:
		return err
	case <-l.done:
		return ErrLoopStopped
	case <-t.C:
		return ErrNoAnswer
	}
}

// drainCommands applies queued commands on the loop thread. Their answers wait in a fixed
// array until the cycle has published its outputs and status (sendReplies), so a caller
// that reads the status after the answer sees the command's effect.
func (l *Loop) drainCommands() {
	var cmd Command
	for l.nReplies < len(l.replies) && l.cmds.Pop(&cmd) {
		l.replies[l.nReplies] = pendingReply{ch: cmd.reply, err: l.apply(&cmd)}
		l.nReplies++
		cmd.reply = nil
	}
}

// sendReplies answers the commands of this cycle. The channels are buffered, so the send
// never waits for the handler.
func (l *Loop) sendReplies() {
	for i := 0; i < l.nReplies; i++ {
		select {
		case l.replies[i].ch <- l.replies[i].err:
		default:
		}
		l.replies[i] = pendingReply{}
	}
	l.nReplies = 0
}

type pendingReply struct {
	ch  chan error
	err error
}

func (l *Loop) apply(cmd *Command) error {
	defer l.publishOperator()
	switch cmd.Kind {
	case CmdSetTempSettings:
		if !math.IsNaN(cmd.Setpoint) {
			l.target = clamp(cmd.Setpoint, l.spec.SetpointMin, l.spec.SetpointMax)
		}
		if !math.IsNaN(cmd.MaxRate) {
			l.maxRate = max(cmd.MaxRate, 0) // rampRate bounds it by the configured rate
		}
		if !math.IsNaN(cmd.OutputMax) {
			l.outputMax = clamp(cmd.OutputMax, l.outMin, l.outMax)
		}
	case CmdSetMotor:
		if l.spec.Enable == nil {
			return ErrNoMotor
		}
		// Switching a motor on is switching it to auto: refused as a whole in dry run, and
		// while the loop is held safe (it would start the motor at re-arming).
		if cmd.MotorOn == 1 && l.dryRun {
			return ErrDryRun
		}
		if cmd.MotorOn == 1 && l.held() {
			return ErrHeld
		}
		if !math.IsNaN(cmd.Speed) {
			l.speed = clamp(cmd.Speed, 0, 1)
		}
		if !math.IsNaN(cmd.Setpoint) {
			l.target = clamp(cmd.Setpoint, l.spec.SetpointMin, l.spec.SetpointMax)
		}
		switch cmd.MotorOn {
		case 0:
			l.setMode(pid.Off)
		case 1:
			l.setMode(pid.Auto)
		}
	case CmdSetMode:
		if l.dryRun && cmd.Mode == pid.Auto {
			return ErrDryRun
		}
		manual := cmd.Manual
		if math.IsNaN(manual) {
			manual = l.Output() // bumpless: hold what the actuator has now
		}
		energizes := cmd.Mode == pid.Auto || (cmd.Mode == pid.Manual && manual != l.spec.Main.Safe)
		if energizes && l.held() {
			return ErrHeld
		}
		if cmd.Mode == pid.Manual {
			l.manual = clamp(manual, 0, 1)
		}
		l.setMode(cmd.Mode)
	case CmdAckAlarm:
		return l.ack(cmd.Alarm)
	case CmdClearDryRun:
		l.clearDryRun()
	}
	return nil
}

// restore applies the operator's state kept over a restart, narrowed like a command.
func (l *Loop) restore(op OperatorState) {
	l.mode = op.Mode
	if !math.IsNaN(op.Setpoint) {
		l.target = clamp(op.Setpoint, l.spec.SetpointMin, l.spec.SetpointMax)
	}
	if !math.IsNaN(op.MaxRate) {
		l.maxRate = max(op.MaxRate, 0)
	}
	if !math.IsNaN(op.OutputMax) {
		l.outputMax = clamp(op.OutputMax, l.outMin, l.outMax)
	}
	if !math.IsNaN(op.Speed) {
		l.speed = clamp(op.Speed, 0, 1)
	}
	if !math.IsNaN(op.Manual) {
		l.manual = clamp(op.Manual, 0, 1)
	}
	l.dryRun = op.DryRun
}

// publishOperator makes the operator's state readable by other goroutines (Operator).
func (l *Loop) publishOperator() {
	l.modeA.Store(uint32(l.mode))
	l.spBits.Store(math.Float64bits(l.target))
	l.maxRateBits.Store(math.Float64bits(l.maxRate))
	l.opMaxBits.Store(math.Float64bits(l.outputMax))
	l.speedBits.Store(math.Float64bits(l.speed))
	l.manualBits.Store(math.Float64bits(l.manual))
	l.dryRunA.Store(l.dryRun)
}

// Operator returns the operator's state as of the last command the loop applied; the
// extension persists it before the API answers.
func (l *Loop) Operator() OperatorState {
	return OperatorState{
		Mode:      pid.Mode(l.modeA.Load()),
		Setpoint:  math.Float64frombits(l.spBits.Load()),
		MaxRate:   math.Float64frombits(l.maxRateBits.Load()),
		OutputMax: math.Float64frombits(l.opMaxBits.Load()),
		Speed:     math.Float64frombits(l.speedBits.Load()),
		Manual:    math.Float64frombits(l.manualBits.Load()),
		DryRun:    l.dryRunA.Load(),
	}
}

// clearDryRun ends dry run in mode off, so that connecting the actuators never starts a
// heater or motor by itself: the operator switches each loop to auto afterwards. Clearing
// a loop that is not in dry run changes nothing.
func (l *Loop) clearDryRun() {
	if !l.dryRun {
		return
	}
	l.setMode(pid.Off)
	l.dryRun = false
	l.dryRunA.Store(false)
	l.record(Event{Kind: EventDryRunCleared, Time: l.wall(schedule.Now())})
}

func (l *Loop) setMode(m pid.Mode) {
	l.mode = m
	l.modeA.Store(uint32(m))
	if l.spec.PID != nil {
		l.spec.PID.SetMode(m)
	}
}

// ack acknowledges one alarm, or with i < 0 every latched alarm; it fails with
// alarm.ErrConditionActive if one that it was asked to clear still has its condition.
func (l *Loop) ack(i int) error {
	now := schedule.Now()
	if i >= 0 {
		if err := l.alarms.Ack(i); err != nil {
			return err
		}
		l.recordAck(i, now)
		return nil
	}
	var firstErr error
	for j := 0; j < l.alarms.Len(); j++ {
		if !l.alarms.At(j).Latched() {
			continue
		}
		if err := l.alarms.Ack(j); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		l.recordAck(j, now)
	}
	return firstErr
}

func (l *Loop) recordAck(i int, now int64) {
	l.record(Event{Kind: EventAlarm, Time: l.wall(now), Alarm: int16(i), Transition: uint8(alarm.Acknowledged)})
	l.record(Event{Kind: EventAlarm, Time: l.wall(now), Alarm: int16(i), Transition: uint8(alarm.Cleared)})
}
