package controlloop

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

// Defaults of the plausibility checks, derived from the loop's period: long enough that a
// slow loop's normal response is never mistaken for a fault, short enough to stop a
// heater before its high limit.
const (
	stuckPeriods        = 100
	minStuckAfter       = 10 * time.Second
	saturationPeriods   = 300
	minSaturationTime   = 30 * time.Second
	minResponseFraction = 0.01
)

func enabled(b *bool) bool { return b == nil || *b }

// stuckAfter is the frozen-sensor window of the loop's input, 0 when turned off.
func (l *LoopConfig) stuckAfter() time.Duration {
	if !enabled(l.Input.Stuck.Enabled) {
		return 0
	}
	if l.Input.Stuck.After > 0 {
		return l.Input.Stuck.After
	}
	return max(stuckPeriods*l.Period, minStuckAfter)
}

// saturationTime is the plausibility window, 0 when turned off.
func (l *LoopConfig) saturationTime() time.Duration {
	if !enabled(l.Plausibility.Enabled) {
		return 0
	}
	if l.Plausibility.SaturationTime > 0 {
		return l.Plausibility.SaturationTime
	}
	return max(saturationPeriods*l.Period, minSaturationTime)
}

func (l *LoopConfig) minResponse() float64 {
	if p := l.Plausibility.MinResponse; p != nil {
		return *p
	}
	return minResponseFraction * (l.Input.ValidRange.Max - l.Input.ValidRange.Min)
}

// outputLimits are the configured limits of the loop's output: the PID's, or 0..1.
func (l *LoopConfig) outputLimits() (lo, hi float64) {
	if p := l.Controller.PID; p != nil {
		lim := p.limits()
		return lim.OutMin, lim.OutMax
	}
	return 0, 1
}

// validateSafety cross-checks one loop's safety configuration: the setpoint range stays
// clear of every alarm limit and interlock threshold on the same process value, the safe
// state is a state the output can have, and the plausibility checks are sound.
func (c *Config) validateSafety(i int, add func(format string, a ...any)) {
	l := &c.Loops[i]
	sp := l.Setpoint
	m := sp.LimitMargin
	if m < 0 || math.IsNaN(m) {
		add("setpoint.limit_margin: must not be negative, got %g", m)
		m = 0
	}
	if sp.MaxRate > 0 && math.IsInf(sp.MaxRate, 0) {
		add("setpoint.max_rate: must be finite, got %g", sp.MaxRate)
	}
	// The setpoint range must stay strictly inside each limit on this loop's value, and at
	// least limit_margin away from it.
	checkHigh := func(key string, limit float64) {
		if sp.Max >= limit || limit-sp.Max < m {
			add("setpoint.max: %g is not at least setpoint.limit_margin (%g) below %s = %g: a legal setpoint would trip the loop; lower setpoint.max %s", sp.Max, m, key, limit, bound("below", "to", "or less", limit, m))
		}
	}
	checkLow := func(key string, limit float64) {
		if sp.Min <= limit || sp.Min-limit < m {
			add("setpoint.min: %g is not at least setpoint.limit_margin (%g) above %s = %g: a legal setpoint would trip the loop; raise setpoint.min %s", sp.Min, m, key, limit, bound("above", "to", "or more", limit, -m))
		}
	}
	for j, a := range l.Alarms {
		switch a.Type {
		case AlarmHigh:
			checkHigh(fmt.Sprintf("alarms[%d] (%s).limit", j, a.Name), a.Limit)
		case AlarmLow:
			checkLow(fmt.Sprintf("alarms[%d] (%s).limit", j, a.Name), a.Limit)
		}
	}
	// Interlocks of this loop on its own input, and of other loops on this loop's value.
	for k := range c.Loops {
		for j, il := range c.Loops[k].Interlocks {
			onThis := (k == i && il.Sensor != "" && il.Sensor == l.Input.Sensor) || (il.Loop != "" && il.Loop == l.Name)
			if !onThis {
				continue
			}
			key := fmt.Sprintf("loops[%d].interlocks[%d] (%s)", k, j, il.Name)
			if il.Below != nil {
				checkHigh(key+".below", *il.Below)
			}
			if il.Above != nil {
				checkLow(key+".above", *il.Above)
			}
		}
	}

	if _, hi := l.outputLimits(); l.Output.SafeState > hi && l.Controller.PID != nil {
		add("output.safe_state: %g is above controller.pid.output_max %g: the safe state must be a state the output may have", l.Output.SafeState, hi)
	}

	if l.Input.Stuck.After < 0 {
		add("input.stuck.after: must not be negative, got %s", l.Input.Stuck.After)
	}
	if t := l.Input.Stuck.Tolerance; t < 0 || math.IsNaN(t) {
		add("input.stuck.tolerance: must not be negative, got %g", t)
	}
	if a := l.stuckAfter(); a > 0 && l.Period > 0 && a < 3*l.Period {
		add("input.stuck.after: %s is under 3 periods (%s); a sensor repeats itself that often (turn the check off with input.stuck.enabled: false instead)", a, 3*l.Period)
	}
	if l.Plausibility.SaturationTime < 0 {
		add("plausibility.saturation_time: must not be negative, got %s", l.Plausibility.SaturationTime)
	}
	if p := l.Plausibility.MinResponse; p != nil && (*p <= 0 || math.IsNaN(*p) || math.IsInf(*p, 0)) {
		add("plausibility.min_response: must be a positive number, got %g", *p)
	}
	if st := l.saturationTime(); st > 0 && l.Period > 0 && st < 10*l.Period {
		add("plausibility.saturation_time: %s is under 10 periods (%s); the process cannot respond that fast", st, 10*l.Period)
	}
	for j, il := range l.Interlocks {
		if il.StaleAfter < 0 {
			add("interlocks[%d].stale_after: must not be negative, got %s", j, il.StaleAfter)
		}
	}
}

// oneWireRead is one read of a 1-wire thermometer in a loop's cycle.
type oneWireRead struct {
	dc    *hardware.DeviceConfig
	key   string // input, interlocks[j]
	conv  time.Duration
	stale time.Duration // the configured stale_after of that read, 0 = the default
}

// oneWireReads are the 1-wire thermometers a cycle of l reads, in order: the input, then
// each interlock sensor (the same sensor twice is two reads).
func oneWireReads(l *LoopConfig, devices map[string]*hardware.DeviceConfig) []oneWireRead {
	var reads []oneWireRead
	note := func(name, key string, stale time.Duration) {
		if dc, ok := devices[name]; ok {
			if conv := hardware.ConversionTime(*dc); conv > 0 {
				reads = append(reads, oneWireRead{dc: dc, key: key, conv: conv, stale: stale})
			}
		}
	}
	note(l.Input.Sensor, "input", l.Input.StaleAfter)
	for j, il := range l.Interlocks {
		if il.Sensor != "" {
			note(il.Sensor, fmt.Sprintf("interlocks[%d]", j), il.StaleAfter)
		}
	}
	return reads
}

// checkOneWireReads refuses a loop that cannot read its 1-wire sensors within a period: a
// read through the kernel's w1_therm driver blocks for the sensor's whole conversion, and
// a cycle makes its reads one after the other. A stale_after shorter than the conversion
// would reject every reading. It reports whether it refused the period.
func (c *Config) checkOneWireReads(l *LoopConfig, devices map[string]*hardware.DeviceConfig, add func(format string, a ...any)) bool {
	reads := oneWireReads(l, devices)
	for _, r := range reads {
		if r.stale > 0 && r.stale < r.conv {
			add("%s.stale_after: %s is shorter than the %s conversion of 1-wire sensor %q (%s), so every reading would be stale",
				r.key, r.stale, r.conv.Round(time.Millisecond), r.dc.Name, hardware.ConversionChip(*r.dc))
		}
	}
	var total time.Duration
	for _, r := range reads {
		total += r.conv
	}
	if l.Period <= 0 || total <= l.Period {
		return false
	}
	if len(reads) == 1 {
		r := reads[0]
		add("period: %s is shorter than the %s conversion of 1-wire sensor %q (%s; %s)", l.Period,
			r.conv.Round(time.Millisecond), r.dc.Name, hardware.ConversionChip(*r.dc), hardware.ConversionAdvice(*r.dc, l.Period))
		return true
	}
	parts := make([]string, len(reads))
	for i, r := range reads {
		parts[i] = fmt.Sprintf("%q (%s, %s: %s)", r.dc.Name, r.key, hardware.ConversionChip(*r.dc), r.conv.Round(time.Millisecond))
	}
	add("period: %s is shorter than the %s the 1-wire sensors of one cycle take to convert, one after the other: %s; lower their resolution or lengthen the period",
		l.Period, total.Round(time.Millisecond), strings.Join(parts, ", "))
	return true
}

// bound words the setpoint a fix needs: strictly past limit without a margin, else to
// limit-margin.
func bound(strict, to, orWhat string, limit, margin float64) string {
	if margin == 0 {
		return fmt.Sprintf("%s %g", strict, limit)
	}
	return fmt.Sprintf("%s %g %s", to, limit-margin, orWhat)
}

// interlockStaleAfter is the interlock's staleness bound: its own, or 3 periods of the
// slower of the loop and the loop it watches.
func (c *Config) interlockStaleAfter(l *LoopConfig, il *InterlockConfig) time.Duration {
	if il.StaleAfter > 0 {
		return il.StaleAfter
	}
	p := l.Period
	for k := range c.Loops {
		if il.Loop != "" && c.Loops[k].Name == il.Loop {
			p = max(p, c.Loops[k].Period)
		}
	}
	return 3 * p
}

// direction is +1 when the loop's output raises its process value.
func (l *LoopConfig) direction() float64 {
	if o := l.Controller.OnOff; o != nil && onOffActions[o.Action] == onoff.Cooling {
		return -1
	}
	return 1
}
