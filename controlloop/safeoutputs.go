package controlloop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/metadata"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

// SafeWrite is one actuator that DriveSafe drove to its safe state, or tried to.
type SafeWrite struct {
	// Extension is the controlloop extension the loop belongs to.
	Extension component.ID
	// Loop is the loop's name; Key is "output.actuator" or "output.enable".
	Loop, Key string
	// Device and Kind name the actuator.
	Device string
	Kind   hardware.Kind
	// Backend is what the device was opened on.
	Backend hardware.BackendName
	// Value is the safe state written: a duty for a duty_output, 0 (low) or 1 (high) for a
	// gpio_output.
	Value float64
	// Err is why the actuator could not be driven safe; nil when it was.
	Err error
}

// safeTarget is a loop actuator and the state that is safe for it.
type safeTarget struct {
	loop, key, device string
	value             float64
}

// safeTargets lists the actuators of every loop in configuration order, each with its
// configured safe state: output.safe_state for the actuator, output.enable_safe_state for
// the enable pin.
func (c *Config) safeTargets() []safeTarget {
	var ts []safeTarget
	for _, l := range c.Loops {
		if l.Output.Actuator != "" {
			ts = append(ts, safeTarget{loop: l.Name, key: "output.actuator", device: l.Output.Actuator, value: l.Output.SafeState})
		}
		if l.Output.Enable != "" {
			v := 0.0
			if l.Output.EnableSafeState {
				v = 1
			}
			ts = append(ts, safeTarget{loop: l.Name, key: "output.enable", device: l.Output.Enable, value: v})
		}
	}
	return ts
}

// safeStates is safeTargets by device, for the hardware layer, which drives each output
// to it as it opens and when the session closes.
func (c *Config) safeStates() map[string]float64 {
	m := map[string]float64{}
	for _, t := range c.safeTargets() {
		m[t.device] = t.value
	}
	return m
}

// DriveSafe drives every loop actuator of every controlloop extension in conf (a whole
// collector configuration, as resolved from --config) to its configured safe state. It is
// what `safe-outputs` runs after the service has exited, however it exited.
//
// It opens through reg only the loops' actuators (output.actuator and output.enable), each
// in a session of its own that it closes right after the write: a sensor is never opened,
// so a dead sensor or bus cannot stop the safe write, and an actuator that cannot be opened
// or written does not stop the others. The returned error joins every failure and names
// its device; the returned writes are in configuration order, failures included. A
// configuration without a controlloop extension, or without loops, yields no writes and
// no error.
//
// On the sim backend the plant lives inside the collector's process: a separate process
// opens a fresh plant, so there the writes have no effect on the collector's plant.
func DriveSafe(ctx context.Context, conf *confmap.Conf, reg *hardware.Registry, log *zap.Logger) ([]SafeWrite, error) {
	if log == nil {
		log = zap.NewNop()
	}
	exts, err := conf.Sub("extensions")
	if err != nil {
		return nil, fmt.Errorf("extensions: %w", err)
	}
	var keys []string
	ids := map[string]component.ID{}
	for key := range exts.ToStringMap() {
		var id component.ID
		// A key that is not a component ID is the collector's to refuse, not ours.
		if id.UnmarshalText([]byte(key)) == nil && id.Type() == metadata.Type {
			keys = append(keys, key)
			ids[key] = id
		}
	}
	sort.Strings(keys)

	var writes []SafeWrite
	var errs []error
	for _, key := range keys {
		id := ids[key]
		sub, err := exts.Sub(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("extensions::%s: %w", id, err))
			continue
		}
		cfg, bad, err := readActuators(sub)
		if err != nil {
			errs = append(errs, fmt.Errorf("extensions::%s: cannot read its actuators: %w", id, err))
			continue
		}
		for _, t := range cfg.safeTargets() {
			var w SafeWrite
			if derr, ok := bad[t.device]; ok {
				w = SafeWrite{Loop: t.loop, Key: t.key, Device: t.device, Backend: cfg.Hardware.Backend, Value: t.value,
					Err: fmt.Errorf("its entry in hardware.devices cannot be read: %w", derr)}
			} else {
				w = driveOne(ctx, reg, &cfg.Hardware, t, log)
			}
			w.Extension = id
			if w.Err != nil {
				errs = append(errs, fmt.Errorf("%s: loop %q: %s %q: %w", id, t.loop, t.key, t.device, w.Err))
			}
			writes = append(writes, w)
		}
	}
	return writes, errors.Join(errs...)
}

// readActuators reads what safe-outputs needs of an extension's configuration: the loops'
// outputs and the hardware entries they name, each entry decoded on its own. Nothing else
// is decoded, so an entry the collector would refuse (a sensor of an unknown kind, a
// mistyped alarm type, a sim fault) cannot stop the outputs from being driven safe. bad
// holds the actuator entries that do not decode, by name.
func readActuators(sub *confmap.Conf) (cfg *Config, bad map[string]error, err error) {
	var raw struct {
		Hardware struct {
			Backend hardware.BackendName `mapstructure:"backend"`
			Timeout time.Duration        `mapstructure:"timeout"`
			Devices []map[string]any     `mapstructure:"devices"`
		} `mapstructure:"hardware"`
		Loops []struct {
			Name   string       `mapstructure:"name"`
			Output OutputConfig `mapstructure:"output"`
		} `mapstructure:"loops"`
	}
	if err := sub.Unmarshal(&raw, confmap.WithIgnoreUnused()); err != nil {
		return nil, nil, err
	}
	cfg = createDefaultConfig()
	cfg.Hardware.Backend = raw.Hardware.Backend
	if raw.Hardware.Timeout != 0 {
		cfg.Hardware.Timeout = raw.Hardware.Timeout
	}
	wanted := map[string]bool{}
	for _, l := range raw.Loops {
		cfg.Loops = append(cfg.Loops, LoopConfig{Name: l.Name, Output: l.Output})
		wanted[l.Output.Actuator], wanted[l.Output.Enable] = true, true
	}
	bad = map[string]error{}
	for _, entry := range raw.Hardware.Devices {
		name, _ := entry["name"].(string)
		if name == "" || !wanted[name] {
			continue
		}
		var dc hardware.DeviceConfig
		if err := confmap.NewFromStringMap(entry).Unmarshal(&dc); err != nil {
			bad[name] = err
			continue
		}
		cfg.Hardware.Devices = append(cfg.Hardware.Devices, dc)
	}
	return cfg, bad, nil
}

// driveOne opens one actuator alone, writes its safe state and closes it again.
func driveOne(ctx context.Context, reg *hardware.Registry, hw *hardware.Config, t safeTarget, log *zap.Logger) SafeWrite {
	w := SafeWrite{Loop: t.loop, Key: t.key, Device: t.device, Backend: hw.Backend, Value: t.value}
	if w.Backend == "" {
		w.Backend = hardware.BackendSim
	}
	var dc *hardware.DeviceConfig
	for i := range hw.Devices {
		if hw.Devices[i].Name == t.device {
			dc = &hw.Devices[i]
			break
		}
	}
	switch {
	case dc == nil:
		w.Err = errors.New("not a device in hardware.devices")
		return w
	case dc.Kind.Role() != hardware.RoleDutyOutput && dc.Kind.Role() != hardware.RoleDigitalOutput:
		// Opening it would open a sensor (or nothing known): refuse rather than guess.
		w.Err = fmt.Errorf("is a %s, not a duty_output or gpio_output; not opened", dc.Kind)
		return w
	case math.IsNaN(t.value) || t.value < 0 || t.value > 1:
		// Clamping 1.5 to 1 would switch a heater fully on: write nothing instead.
		w.Err = fmt.Errorf("its safe state %g is outside 0..1; not written", t.value)
		return w
	}
	w.Kind = dc.Kind
	s, err := reg.Open(hardware.Config{Backend: hw.Backend, Timeout: hw.Timeout, Devices: []hardware.DeviceConfig{*dc}, Sim: hw.Sim},
		hardware.Settings{Logger: log, SafeStates: map[string]float64{t.device: t.value}})
	if err != nil {
		w.Err = fmt.Errorf("opening: %w", err)
		return w
	}
	dev, _ := s.Device(t.device)
	if err := hardware.OpenError(dev); err != nil {
		// Open no longer fails for an actuator that is not there; its write would only
		// repeat the open error.
		w.Err = fmt.Errorf("opening: %w", err)
		if cerr := s.Close(); cerr != nil {
			w.Err = errors.Join(w.Err, fmt.Errorf("closing: %w", cerr))
		}
		return w
	}
	switch d := dev.(type) {
	case hardware.DutyOutput:
		err = d.WriteDuty(ctx, t.value)
	case hardware.DigitalOutput:
		// The same rule as the loop's own safe write: a pin is high from 0.5 on.
		err = d.WriteLevel(ctx, t.value >= 0.5)
	default:
		err = fmt.Errorf("opened as %T, which is not an output", dev)
	}
	if err != nil {
		err = fmt.Errorf("writing the safe state %g: %w", t.value, err)
	}
	if cerr := s.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing: %w", cerr))
	}
	w.Err = err
	return w
}
