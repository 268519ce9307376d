package hardware

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware/plant"
)

// SimConfig configures the simulated plant. Zero fields take the defaults shown.
type SimConfig struct {
	// Seed seeds every noise source; the same seed and the same reads give the same series.
	Seed int64 `mapstructure:"seed"`
	// TimeScale is plant seconds per wall second (default 1); 60 turns the heater's two-minute
	// time constant into two seconds for tests and demos.
	TimeScale float64 `mapstructure:"time_scale"`
	// Heater is the heater and its temperature sensor.
	Heater SimHeaterConfig `mapstructure:"heater"`
	// Motor is the motor, its tachometer and the flow meter it drives.
	Motor SimMotorConfig `mapstructure:"motor"`
	// DoorOpen starts the door switch open (default closed).
	DoorOpen bool `mapstructure:"door_open"`
	// Faults are scripted faults, timed from the moment the plant starts.
	Faults []FaultSpec `mapstructure:"faults"`
}

// SimHeaterConfig is a small lab heater: C·dT/dt = u·Pmax − (T−Ta)/R with dead time.
type SimHeaterConfig struct {
	// Ambient is the ambient and initial temperature in °C (default 22).
	Ambient float64 `mapstructure:"ambient"`
	// MaxPower is Pmax in W at duty 1 (default 100).
	MaxPower float64 `mapstructure:"max_power"`
	// ThermalResistance is R in K/W (default 0.6: 60 K above ambient at full power).
	ThermalResistance float64 `mapstructure:"thermal_resistance"`
	// TimeConstant is R·C (default 120s).
	TimeConstant time.Duration `mapstructure:"time_constant"`
	// DeadTime delays the heater's effect (default 5s).
	DeadTime time.Duration `mapstructure:"dead_time"`
	// Noise is the temperature sensors' noise standard deviation in °C (default 0.05).
	Noise float64 `mapstructure:"noise"`
}

// SimMotorConfig is a small pump motor with a tachometer and a flow meter.
type SimMotorConfig struct {
	// MaxSpeed is the speed at command 1 in rpm (default 3000).
	MaxSpeed float64 `mapstructure:"max_speed"`
	// TimeConstant is the first-order speed response (default 500ms).
	TimeConstant time.Duration `mapstructure:"time_constant"`
	// TachFullScale is the tachometer voltage at MaxSpeed (default 3.3 V).
	TachFullScale float64 `mapstructure:"tach_full_scale"`
	// FlowPulsesPerRev is the flow meter's pulses per motor revolution (default 0.5).
	FlowPulsesPerRev float64 `mapstructure:"flow_pulses_per_rev"`
	// Noise is the tachometer noise standard deviation in V (default 0.005).
	Noise float64 `mapstructure:"noise"`
}

// withDefaults returns c with every zero field set to its default.
func (c SimConfig) withDefaults() SimConfig {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.TimeScale, 1)
	def(&c.Heater.Ambient, 22)
	def(&c.Heater.MaxPower, 100)
	def(&c.Heater.ThermalResistance, 0.6)
	defDur(&c.Heater.TimeConstant, 120*time.Second)
	defDur(&c.Heater.DeadTime, 5*time.Second)
	def(&c.Heater.Noise, 0.05)
	def(&c.Motor.MaxSpeed, 3000)
	defDur(&c.Motor.TimeConstant, 500*time.Millisecond)
	def(&c.Motor.TachFullScale, 3.3)
	def(&c.Motor.FlowPulsesPerRev, 0.5)
	def(&c.Motor.Noise, 0.005)
	return c
}

func (c SimConfig) plantParams() plant.Params {
	return plant.Params{
		Heater: plant.HeaterParams{
			Ambient:           c.Heater.Ambient,
			MaxPower:          c.Heater.MaxPower,
			ThermalResistance: c.Heater.ThermalResistance,
			TimeConstant:      c.Heater.TimeConstant,
			DeadTime:          c.Heater.DeadTime,
		},
		Motor: plant.MotorParams{
			MaxSpeed:         c.Motor.MaxSpeed,
			TimeConstant:     c.Motor.TimeConstant,
			FlowPulsesPerRev: c.Motor.FlowPulsesPerRev,
		},
		TimeScale:  c.TimeScale,
		DoorClosed: !c.DoorOpen,
	}
}

// validate checks c. A scripted fault may name a device of another component sharing the
// plant, so whether its device exists is checked when the plant starts, not here.
func (c *SimConfig) validate() error {
	var errs []error
	nonNeg := func(key string, v float64) {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("%s: must be a finite non-negative number, got %g", key, v))
		}
	}
	nonNeg("time_scale", c.TimeScale)
	nonNeg("heater.max_power", c.Heater.MaxPower)
	nonNeg("heater.thermal_resistance", c.Heater.ThermalResistance)
	nonNeg("heater.noise", c.Heater.Noise)
	nonNeg("motor.max_speed", c.Motor.MaxSpeed)
	nonNeg("motor.tach_full_scale", c.Motor.TachFullScale)
	nonNeg("motor.flow_pulses_per_rev", c.Motor.FlowPulsesPerRev)
	nonNeg("motor.noise", c.Motor.Noise)
	if math.IsNaN(c.Heater.Ambient) || math.IsInf(c.Heater.Ambient, 0) {
		errs = append(errs, fmt.Errorf("heater.ambient: must be finite, got %g", c.Heater.Ambient))
	}
	for key, d := range map[string]time.Duration{
		"heater.time_constant": c.Heater.TimeConstant, "heater.dead_time": c.Heater.DeadTime,
		"motor.time_constant": c.Motor.TimeConstant,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", key, d))
		}
	}
	if c.Heater.DeadTime > time.Hour {
		errs = append(errs, fmt.Errorf("heater.dead_time: must be at most 1h, got %s", c.Heater.DeadTime))
	}
	for i := range c.Faults {
		if err := c.Faults[i].validate(true); err != nil {
			errs = append(errs, fmt.Errorf("faults[%d].%w", i, err))
		}
	}
	return errors.Join(errs...)
}
