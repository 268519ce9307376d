package sim

import (
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/sim/plant"
)

// withDefaults returns c with every zero field set to its default.
func withDefaults(c hardware.SimConfig) hardware.SimConfig {
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

func plantParams(c hardware.SimConfig) plant.Params {
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
