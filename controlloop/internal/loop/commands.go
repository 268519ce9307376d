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
	switch cmd.Kind {
	case CmdSetTempSettings:
		if !math.IsNaN(cmd.Setpoint) {
			l.target = clamp(cmd.Setpoint, l.spec.SetpointMin, l.spec.SetpointMax)
		}
		if !math.IsNaN(cmd.MaxRate) {
			l.spec.MaxRate = cmd.MaxRate
		}
		if !math.IsNaN(cmd.OutputMax) {
			l.outputMax = cmd.OutputMax
		}
	case CmdSetMotor:
		if l.spec.Enable == nil {
			return ErrNoMotor
		}
		// Switching a motor on is switching it to auto: refused as a whole in dry run.
		if l.dryRun && cmd.MotorOn == 1 {
			return ErrDryRun
		}
		if !math.IsNaN(cmd.Speed) {
			l.speed = cmd.Speed
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
		if cmd.Mode == pid.Manual && !math.IsNaN(cmd.Manual) {
			l.manual = cmd.Manual
		} else if cmd.Mode == pid.Manual {
			l.manual = l.Output()
		}
		l.setMode(cmd.Mode)
	case CmdAckAlarm:
		return l.ack(cmd.Alarm)
	case CmdClearDryRun:
		l.clearDryRun()
	}
	return nil
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
