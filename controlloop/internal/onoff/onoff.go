// Package onoff is the two-position controller with hysteresis used for actuators that are
// either on or off (a conveyor motor, a fan, a heater contactor). The band keeps the
// actuator from chattering around the setpoint.
package onoff

import "math"

// Action says which side of the setpoint switches the output on.
type Action uint8

const (
	// Heating turns the output on below the band (a heater, a pump filling a tank).
	Heating Action = iota
	// Cooling turns the output on above the band (a fan, a chiller, a conveyor emptying a buffer).
	Cooling
)

// Controller switches between 0 and 1. The zero value is a heating controller with no
// hysteresis that starts off.
type Controller struct {
	Hysteresis float64 // full width of the band, centred on the setpoint
	Action     Action
	on         bool
}

// Update returns 1 (on) or 0 (off). Inside the band the previous state holds. A NaN
// measurement switches off: the loop forces the safe state anyway, this is belt and braces.
func (c *Controller) Update(setpoint, pv float64) float64 {
	if math.IsNaN(pv) || math.IsNaN(setpoint) {
		c.on = false
		return 0
	}
	half := c.Hysteresis / 2
	switch c.Action {
	case Heating:
		if pv < setpoint-half {
			c.on = true
		} else if pv > setpoint+half {
			c.on = false
		}
	case Cooling:
		if pv > setpoint+half {
			c.on = true
		} else if pv < setpoint-half {
			c.on = false
		}
	}
	if c.on {
		return 1
	}
	return 0
}

// Reset switches the output off, used when the loop is forced safe so that it re-decides
// from the measurement when control resumes.
func (c *Controller) Reset() { c.on = false }
