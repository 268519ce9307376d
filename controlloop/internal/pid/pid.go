// Package pid is the PID controller of the control loop: derivative on measurement through a
// first-order filter, anti-windup by clamping the integral, output limits and bumpless mode
// changes. It does no allocation and holds no lock, so the loop thread can call it every cycle.
package pid

import (
	"errors"
	"fmt"
	"math"
)

// Mode is how the controller's output is produced.
type Mode uint8

const (
	// Auto computes the output from setpoint and measurement.
	Auto Mode = iota
	// Manual holds the output an operator gave; the controller tracks it so that the return to
	// Auto is bumpless.
	Manual
	// Off holds the output at the lower output limit.
	Off
)

// String is the name used in the command API and in telemetry.
func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Manual:
		return "manual"
	case Off:
		return "off"
	}
	return "unknown"
}

// ParseMode maps the command API's names to modes.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto":
		return Auto, nil
	case "manual":
		return Manual, nil
	case "off":
		return Off, nil
	}
	return Auto, fmt.Errorf("mode %q is not one of auto, manual, off", s)
}

// Gains holds the tuning of a controller in the parallel form
// u = Kp·e + Ki·∫e dt − Kd·d(pv)/dt.
type Gains struct {
	Kp float64
	Ki float64 // per second
	Kd float64 // seconds
	// DerivativeFilter is the time constant (s) of the first-order low-pass applied to the
	// derivative term; 0 disables the filter (not advised with a noisy sensor).
	DerivativeFilter float64
}

// Limits bounds the output and the integral's share of it.
type Limits struct {
	OutMin, OutMax float64
	// IntegralMin and IntegralMax clamp the integral term (in output units). When both are
	// zero the output limits are used: the integral can never hold more than the actuator can
	// do, which also bounds how bumpless a mode change can be when Kp·error is large.
	IntegralMin, IntegralMax float64
}

// Validate reports configuration mistakes; the caller prefixes the config key.
func (g Gains) Validate() error {
	for _, v := range []struct {
		name string
		val  float64
	}{{"kp", g.Kp}, {"ki", g.Ki}, {"kd", g.Kd}, {"derivative_filter", g.DerivativeFilter}} {
		if math.IsNaN(v.val) || math.IsInf(v.val, 0) || v.val < 0 {
			return fmt.Errorf("%s must be a finite number >= 0, got %v", v.name, v.val)
		}
	}
	if g.Kp == 0 && g.Ki == 0 && g.Kd == 0 {
		return errors.New("kp, ki and kd must not all be 0")
	}
	return nil
}

// Validate reports configuration mistakes; the caller prefixes the config key.
func (l Limits) Validate() error {
	if !(l.OutMin < l.OutMax) {
		return fmt.Errorf("output_min (%v) must be below output_max (%v)", l.OutMin, l.OutMax)
	}
	if (l.IntegralMin != 0 || l.IntegralMax != 0) && !(l.IntegralMin < l.IntegralMax) {
		return fmt.Errorf("integral_min (%v) must be below integral_max (%v)", l.IntegralMin, l.IntegralMax)
	}
	return nil
}

// Controller is one PID instance. The zero value is not usable; call New.
type Controller struct {
	gains  Gains
	limits Limits
	mode   Mode

	integral float64 // in output units, already multiplied by Ki
	dState   float64 // filtered derivative of the measurement
	lastPV   float64
	havePV   bool
	manual   float64
	out      float64
	bumpless bool // the next Auto update starts from out
}

// New returns a controller in Auto mode with its output at OutMin.
func New(g Gains, l Limits) (*Controller, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if l.IntegralMin == 0 && l.IntegralMax == 0 {
		l.IntegralMin, l.IntegralMax = l.OutMin, l.OutMax
	}
	return &Controller{gains: g, limits: l, out: l.OutMin, manual: l.OutMin}, nil
}

// Mode returns the current mode.
func (c *Controller) Mode() Mode { return c.mode }

// Output returns the last output.
func (c *Controller) Output() float64 { return c.out }

// SetMode switches mode. Entering Auto initialises the integral from the current output so
// the output does not jump (bumpless transfer); entering Manual keeps the current output
// until SetManual changes it.
func (c *Controller) SetMode(m Mode) {
	if m == c.mode {
		return
	}
	switch m {
	case Auto:
		// The first Auto update back-calculates the integral from the output the actuator
		// holds now, so the proportional term does not make it jump.
		c.bumpless = true
		c.havePV = false
		c.dState = 0
	case Manual:
		c.manual = c.out
	case Off:
		c.out = c.limits.OutMin
	}
	c.mode = m
}

// SetManual sets the output used in Manual mode (clamped to the output limits).
func (c *Controller) SetManual(u float64) {
	if math.IsNaN(u) {
		return
	}
	c.manual = clamp(u, c.limits.OutMin, c.limits.OutMax)
}

// Reset forgets history: the next Update starts from integral 0 and output OutMin. Used
// after the loop was forced safe, so that accumulated error does not kick the actuator when
// control resumes.
func (c *Controller) Reset() {
	c.integral = 0
	c.dState = 0
	c.havePV = false
	c.bumpless = false
	c.out = c.limits.OutMin
	c.manual = c.limits.OutMin
}

// Track makes the controller follow an output it did not produce (the safe state, an
// interlock) so that the return to control is bumpless.
func (c *Controller) Track(u float64) {
	if math.IsNaN(u) {
		return
	}
	c.out = clamp(u, c.limits.OutMin, c.limits.OutMax)
	c.bumpless = true
	c.havePV = false
}

// Update computes the output for one period dt (s). NaN inputs or a non-positive dt leave
// the output unchanged: the loop's validation forces the safe state before that can matter.
func (c *Controller) Update(setpoint, pv, dt float64) float64 {
	switch c.mode {
	case Off:
		c.out = c.limits.OutMin
		return c.out
	case Manual:
		c.out = c.manual
		c.havePV = false
		c.bumpless = true
		return c.out
	}
	if dt <= 0 || math.IsNaN(setpoint) || math.IsNaN(pv) || math.IsInf(pv, 0) {
		return c.out
	}
	g := c.gains
	e := setpoint - pv

	// Derivative on measurement: a setpoint step does not kick the output. The filter is
	// the discrete form of Kd·s/(Tf·s+1) (backward Euler), which is stable for any dt.
	var d float64
	if c.havePV && g.Kd > 0 {
		raw := -(pv - c.lastPV) / dt
		if g.DerivativeFilter > 0 {
			a := g.DerivativeFilter / (g.DerivativeFilter + dt)
			c.dState = a*c.dState + (1-a)*raw
		} else {
			c.dState = raw
		}
		d = g.Kd * c.dState
	}
	c.lastPV, c.havePV = pv, true

	if c.bumpless {
		c.integral = c.out - g.Kp*e - d
		c.bumpless = false
	}
	// Anti-windup by clamping, in both of its usual senses: the integral stops integrating
	// while the output is saturated and the error would push it further into saturation
	// (conditional integration), and it never leaves its own limits. So it recovers as soon
	// as the error changes sign instead of unwinding a large store first.
	pd := g.Kp*e + d
	next := c.integral + g.Ki*e*dt
	if u := pd + next; (u > c.limits.OutMax && e > 0) || (u < c.limits.OutMin && e < 0) {
		next = c.integral
	}
	c.integral = clamp(next, c.limits.IntegralMin, c.limits.IntegralMax)
	c.out = clamp(pd+c.integral, c.limits.OutMin, c.limits.OutMax)
	return c.out
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
