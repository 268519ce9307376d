package hardware

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
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

// Sim signals: what a sim device reads or drives in the plant.
const (
	// SignalHeaterTemperature is the heater's temperature (°C) plus noise.
	SignalHeaterTemperature = "heater_temperature"
	// SignalAmbientTemperature is the ambient temperature (°C) plus noise.
	SignalAmbientTemperature = "ambient_temperature"
	// SignalSoCTemperature is a SoC temperature (°C) that follows the heater's duty a little.
	SignalSoCTemperature = "soc_temperature"
	// SignalMotorTach is the motor tachometer voltage: 0..tach_full_scale V over 0..max_speed.
	SignalMotorTach = "motor_tach"
	// SignalSupplyVoltage is a 3.3 V supply rail plus noise.
	SignalSupplyVoltage = "supply_voltage"
	// SignalDoor is the door switch: high when closed.
	SignalDoor = "door"
	// SignalFlowMeter is the flow meter's pulse train, whose rate follows the motor speed.
	SignalFlowMeter = "flow_meter"
	// SignalHeater is the heater's SSR duty (0..1).
	SignalHeater = "heater"
	// SignalMotorSpeed is the motor's speed command (0..1 of max_speed).
	SignalMotorSpeed = "motor_speed"
	// SignalMotorEnable switches the motor on.
	SignalMotorEnable = "motor_enable"
	// SignalIndicator is a lamp or buzzer output that drives nothing in the plant.
	SignalIndicator = "indicator"
)

type signalInfo struct {
	name string
	role Role
}

var signals = []signalInfo{
	{SignalHeaterTemperature, RoleTemperatureInput},
	{SignalAmbientTemperature, RoleTemperatureInput},
	{SignalSoCTemperature, RoleTemperatureInput},
	{SignalMotorTach, RoleAnalogInput},
	{SignalSupplyVoltage, RoleAnalogInput},
	{SignalDoor, RoleDigitalInput},
	{SignalFlowMeter, RoleDigitalInput},
	{SignalHeater, RoleDutyOutput},
	{SignalMotorSpeed, RoleDutyOutput},
	{SignalMotorEnable, RoleDigitalOutput},
	{SignalIndicator, RoleDigitalOutput},
}

func signalByName(name string) (signalInfo, bool) {
	for _, s := range signals {
		if s.name == name {
			return s, true
		}
	}
	return signalInfo{}, false
}

// SignalNames lists the sim signals, sorted.
func SignalNames() []string {
	out := make([]string, 0, len(signals))
	for _, s := range signals {
		out = append(out, s.name)
	}
	sort.Strings(out)
	return out
}
