package controlloop

import (
	"math"

	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/internal/retain"
)

// configMode is the loop's configured mode at start.
func (l *LoopConfig) configMode() pid.Mode { return loopModes[l.Mode] }

// operatorRecord is what the latch file keeps of a loop's operator state: only what
// differs from the configuration, so that an edited configuration still takes effect for
// everything the operator did not change. Nil when nothing differs.
func operatorRecord(lc *LoopConfig, cfgDryRun bool, op loop.OperatorState) *retain.Operator {
	var r retain.Operator
	set := false
	if op.Mode != lc.configMode() {
		r.Mode, set = op.Mode.String(), true
	}
	differs := func(v, cfg float64) *float64 {
		if math.IsNaN(v) || v == cfg {
			return nil
		}
		set = true
		return &v
	}
	_, outMax := lc.outputLimits()
	speed := lc.Output.Speed
	if speed == 0 {
		speed = 1
	}
	r.Setpoint = differs(op.Setpoint, lc.Setpoint.Value)
	if op.MaxRate > 0 {
		r.MaxRate = differs(op.MaxRate, lc.Setpoint.MaxRate)
	}
	r.OutputMax = differs(op.OutputMax, outMax)
	r.Speed = differs(op.Speed, speed)
	if op.Mode == pid.Manual {
		r.Manual = differs(op.Manual, math.NaN())
	}
	if cfgDryRun && !op.DryRun {
		r.DryRunCleared, set = true, true
	}
	if !set {
		return nil
	}
	return &r
}

// restoredOperator turns a loop's record into the state it restarts with. Warm restarts
// take all of it; cold restarts only keep a loop the operator switched off, off. A mode
// that does not parse (an edited file) restarts the loop off: the safe reading.
func (e *controlLoop) restoredOperator(lc *LoopConfig, rec *retain.Operator) *loop.OperatorState {
	if rec == nil {
		return nil
	}
	mode := lc.configMode()
	if rec.Mode != "" {
		m, err := pid.ParseMode(rec.Mode)
		if err != nil {
			e.log.Warn("latch file holds an unknown mode for this loop; it restarts off", zap.String("loop", lc.Name), zap.String("mode", rec.Mode))
			m = pid.Off
		}
		mode = m
	}
	nan := math.NaN()
	op := &loop.OperatorState{Mode: mode, Setpoint: nan, MaxRate: nan, OutputMax: nan, Speed: nan, Manual: nan, DryRun: e.cfg.DryRun}
	if e.cfg.Restart == RestartCold {
		if mode != pid.Off {
			return nil
		}
		return op
	}
	val := func(p *float64) float64 {
		if p == nil {
			return nan
		}
		return *p
	}
	op.Setpoint, op.MaxRate, op.OutputMax = val(rec.Setpoint), val(rec.MaxRate), val(rec.OutputMax)
	op.Speed, op.Manual = val(rec.Speed), val(rec.Manual)
	op.DryRun = e.cfg.DryRun && !rec.DryRunCleared
	return op
}

// recordRestart says how this start relates to the last one: the first start, or a warm
// or cold restart after a clean stop or after a crash, kill or power cut (unclean).
func (e *controlLoop) recordRestart(existed, unclean bool) {
	kind := string(e.cfg.Restart)
	if !existed {
		kind = "first"
	}
	if unclean {
		e.log.Warn("restart after an unclean stop (crash, kill or power cut): latches restored, outputs started safe",
			zap.String("restart", kind))
	}
	e.tel.RecordRestart(kind, !unclean, e.starts.Clean, e.starts.Unclean)
}
