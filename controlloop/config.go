package controlloop

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/fieldcol/fieldcol/controlloop/internal/alarm"
	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/confenum"
	"github.com/fieldcol/fieldcol/internal/hardware"
)

// Period bounds: below 10 ms a Pi's scheduling jitter is a large part of the period; above
// 10 s a loop is too slow to call a safety function.
const (
	minPeriod = 10 * time.Millisecond
	maxPeriod = 10 * time.Second
)

// Config is the controlloop extension's configuration.
type Config struct {
	// Hardware opens the loops' sensors and actuators through internal/hardware.
	Hardware hardware.Config `mapstructure:"hardware"`
	// Loops are the control loops.
	Loops []LoopConfig `mapstructure:"loops"`
	// API is the command API server.
	API APIConfig `mapstructure:"api"`
	// LatchFile keeps latched alarms and the operator's settings across restarts.
	LatchFile string `mapstructure:"latch_file"`
	// Restart is what a restart keeps: "warm" (default) restores the operator's mode,
	// setpoints, ramp, output limit, speed and dry run; "cold" starts from the
	// configuration. Under both, latches are restored and a loop the operator switched off
	// stays off.
	Restart RestartMode `mapstructure:"restart"`
	// Realtime asks for SCHED_FIFO and mlockall for the loop threads.
	Realtime bool `mapstructure:"realtime"`
	// RealtimePriority is the SCHED_FIFO priority (1..99).
	RealtimePriority int `mapstructure:"realtime_priority"`
	// PreciseWindow is how long before each deadline a loop thread finishes its sleep with a
	// raw syscall that keeps its P, so that waking does not wait for the Go scheduler (0 = off).
	PreciseWindow time.Duration `mapstructure:"precise_window"`
	// PreciseWindowYield passes a loop thread through the Go scheduler at the start of its
	// precise window, so that no preemption request is left for its wake-up
	// (schedule.Options.Yield).
	PreciseWindowYield bool `mapstructure:"precise_window_yield"`
	// Watchdog controls the systemd notification.
	Watchdog WatchdogConfig `mapstructure:"watchdog"`
	// Telemetry bounds the buffers of events and spans.
	Telemetry TelemetryConfig `mapstructure:"telemetry"`
	// DryRun runs every loop without writing its actuators (they keep their safe state) until
	// an operator sends CLEAR_DRY_RUN; fieldcol-restore starts a restored Pi this way.
	DryRun bool `mapstructure:"dry_run"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// APIConfig is the command API.
type APIConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// RateLimit bounds POST requests (commands, faults) per second over all clients.
	RateLimit RateLimitConfig `mapstructure:"rate_limit"`
	// CommandTimeout is how long a command waits for its loop's next cycle.
	CommandTimeout time.Duration `mapstructure:"command_timeout"`
	// AuthThrottle blocks a client address after repeated failed authentications, in front
	// of the authenticator.
	AuthThrottle AuthThrottleConfig `mapstructure:"auth_throttle"`
	// MinTokenLength is the shortest bearertokenauth token the API starts with (0 = no check).
	MinTokenLength int `mapstructure:"min_token_length"`
	// MaxConnections caps the connections open at once; more wait to be accepted.
	MaxConnections int `mapstructure:"max_connections"`
}

// RateLimitConfig is a token bucket.
type RateLimitConfig struct {
	RequestsPerSecond float64 `mapstructure:"requests_per_second"`
	Burst             int     `mapstructure:"burst"`
}

// WatchdogConfig controls sd_notify.
type WatchdogConfig struct {
	// Enabled sends READY=1 and, when systemd set WatchdogSec, WATCHDOG=1 while every loop
	// completes healthy cycles. Without NOTIFY_SOCKET (not under systemd) it does nothing.
	Enabled bool `mapstructure:"enabled"`
}

// TelemetryConfig bounds what waits for the hardware receiver to collect it.
type TelemetryConfig struct {
	// TraceEvery samples one cycle in this many as a span (0 = no cycle spans).
	TraceEvery int `mapstructure:"trace_every"`
	// MaxLogRecords and MaxSpans bound the buffers; beyond them records are dropped and counted.
	MaxLogRecords int `mapstructure:"max_log_records"`
	MaxSpans      int `mapstructure:"max_spans"`
}

// LoopConfig is one control loop.
type LoopConfig struct {
	Name       string            `mapstructure:"name"`
	Period     time.Duration     `mapstructure:"period"`
	Unit       string            `mapstructure:"unit"`
	Input      InputConfig       `mapstructure:"input"`
	Output     OutputConfig      `mapstructure:"output"`
	Controller ControllerConfig  `mapstructure:"controller"`
	Setpoint   SetpointConfig    `mapstructure:"setpoint"`
	Mode       LoopMode          `mapstructure:"mode"`
	Interlocks []InterlockConfig `mapstructure:"interlocks"`
	Alarms     []AlarmConfig     `mapstructure:"alarms"`
	// Plausibility trips the latched alarm "plausibility" when a saturated output does not
	// move the process value.
	Plausibility PlausibilityConfig `mapstructure:"plausibility"`
}

// PlausibilityConfig is the saturation check: with the output at its upper limit for
// saturation_time, the process value must move at least min_response the way the output
// pushes it (up for a heater or motor, down for an on/off loop with action cooling).
type PlausibilityConfig struct {
	// Enabled is true unless the configuration turns it off explicitly.
	Enabled *bool `mapstructure:"enabled"`
	// SaturationTime defaults to 300 periods, at least 30s.
	SaturationTime time.Duration `mapstructure:"saturation_time"`
	// MinResponse defaults to 1 % of the input's valid range.
	MinResponse *float64 `mapstructure:"min_response"`
}

// StuckConfig is the frozen-sensor check of an analog input.
type StuckConfig struct {
	// Enabled is true unless the configuration turns it off explicitly.
	Enabled *bool `mapstructure:"enabled"`
	// After is how long readings may stay within Tolerance of each other; default 100
	// periods, at least 10s.
	After time.Duration `mapstructure:"after"`
	// Tolerance is the change below which a reading counts as unchanged (default 0: a noisy
	// sensor never repeats a reading exactly for long). Set it to the sensor's resolution
	// when that is coarser than its noise.
	Tolerance float64 `mapstructure:"tolerance"`
}

// InputConfig is the process value sensor.
type InputConfig struct {
	// Sensor names an analog or temperature device of `hardware.devices`.
	Sensor     string         `mapstructure:"sensor"`
	ValidRange hardware.Range `mapstructure:"valid_range"`
	// StaleAfter invalidates a reading older than this when it arrives (default 3 periods).
	StaleAfter time.Duration `mapstructure:"stale_after"`
	// Stuck detects a frozen sensor (on unless turned off).
	Stuck StuckConfig `mapstructure:"stuck"`
}

// OutputConfig is the actuator side.
type OutputConfig struct {
	// Actuator names a duty_output (heater SSR, motor speed) or gpio_output device.
	Actuator string `mapstructure:"actuator"`
	// SafeState is written whenever outputs are forced safe (duty, or 0/1 for a pin).
	SafeState float64 `mapstructure:"safe_state"`
	// Enable names an optional gpio_output that is on while the output is above 0 (motor
	// enable); it is off in the safe state unless EnableSafeState says otherwise.
	Enable          string `mapstructure:"enable"`
	EnableSafeState bool   `mapstructure:"enable_safe_state"`
	// Speed scales an on/off motor loop's output (0..1; SET_MOTOR changes it).
	Speed float64 `mapstructure:"speed"`
}

// ControllerConfig selects exactly one controller.
type ControllerConfig struct {
	PID   *PIDConfig   `mapstructure:"pid"`
	OnOff *OnOffConfig `mapstructure:"onoff"`
}

// PIDConfig tunes a PID controller (gains in wall-clock seconds).
type PIDConfig struct {
	Kp               float64       `mapstructure:"kp"`
	Ki               float64       `mapstructure:"ki"`
	Kd               float64       `mapstructure:"kd"`
	DerivativeFilter time.Duration `mapstructure:"derivative_filter"`
	OutputMin        float64       `mapstructure:"output_min"`
	OutputMax        float64       `mapstructure:"output_max"`
	IntegralMin      float64       `mapstructure:"integral_min"`
	IntegralMax      float64       `mapstructure:"integral_max"`
}

// OnOffConfig is a two-position controller.
type OnOffConfig struct {
	Hysteresis float64     `mapstructure:"hysteresis"`
	Action     OnOffAction `mapstructure:"action"`
}

// SetpointConfig bounds the setpoint.
type SetpointConfig struct {
	Value   float64 `mapstructure:"value"`
	Min     float64 `mapstructure:"min"`
	Max     float64 `mapstructure:"max"`
	MaxRate float64 `mapstructure:"max_rate"`
	// LimitMargin is the least distance between the setpoint range and every alarm limit
	// and interlock threshold on this loop's process value (default 0: strictly inside).
	LimitMargin float64 `mapstructure:"limit_margin"`
}

// InterlockConfig is a permissive over a sensor or another loop.
type InterlockConfig struct {
	Name string `mapstructure:"name"`
	// Sensor names an input device; Loop names another loop (its process value).
	Sensor string `mapstructure:"sensor"`
	Loop   string `mapstructure:"loop"`
	// Level is what a digital sensor must read for the interlock to hold.
	Level *bool `mapstructure:"level"`
	// Below and Above bound a value (sensor or loop) for the interlock to hold.
	Below *float64 `mapstructure:"below"`
	Above *float64 `mapstructure:"above"`
	// Latch raises a latched alarm when the interlock trips, so the loop restarts only after
	// ACK_ALARM.
	Latch bool `mapstructure:"latch"`
	// StaleAfter is the oldest reading the interlock accepts (a sensor read that takes
	// longer, a peer loop's value older than this, does not hold); default 3 periods of the
	// slower of the two loops.
	StaleAfter time.Duration `mapstructure:"stale_after"`
}

// AlarmConfig is a latching process alarm.
type AlarmConfig struct {
	Name  string        `mapstructure:"name"`
	Type  AlarmType     `mapstructure:"type"`
	Limit float64       `mapstructure:"limit"`
	Delay time.Duration `mapstructure:"delay"`
}

// maxYieldWindow is the longest precise window precise_window_yield can keep free of a
// preemption request (schedule.Options.Yield).
const maxYieldWindow = 8 * time.Millisecond

func createDefaultConfig() *Config {
	return &Config{
		Hardware:         hardware.Config{Backend: hardware.BackendSim},
		API:              defaultAPIConfig(),
		LatchFile:        "/var/lib/fieldcol/controlloop/latches.json",
		Restart:          RestartWarm,
		RealtimePriority: 50,
		PreciseWindow:    schedule.DefaultPreciseWindow,
		Watchdog:         WatchdogConfig{Enabled: true},
		Telemetry:        TelemetryConfig{TraceEvery: 100, MaxLogRecords: 1024, MaxSpans: 512},
	}
}

// Validate checks everything that can be checked without opening devices; each message
// names its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(c.Loops) == 0 {
		add("loops: at least one loop is required")
	}
	if strings.TrimSpace(c.LatchFile) == "" {
		add("latch_file: must be set: latched alarms have to survive a restart")
	}
	if err := confenum.Check(c.Restart, restartModes, restartChoices); err != nil {
		add("restart: %w", err)
	}
	if c.Realtime && (c.RealtimePriority < 1 || c.RealtimePriority > 99) {
		add("realtime_priority: must be 1..99, got %d", c.RealtimePriority)
	}
	if c.PreciseWindow < 0 || c.PreciseWindow > 10*time.Millisecond {
		add("precise_window: must be 0..10ms (it delays GC pauses by up to its length), got %s", c.PreciseWindow)
	}
	if c.PreciseWindowYield && (c.PreciseWindow <= 0 || c.PreciseWindow > maxYieldWindow) {
		add("precise_window_yield: needs a precise_window of more than 0 and at most %s (the runtime asks a goroutine to yield again 10ms after the last time), got %s", maxYieldWindow, c.PreciseWindow)
	}
	if c.Telemetry.TraceEvery < 0 {
		add("telemetry.trace_every: must not be negative, got %d", c.Telemetry.TraceEvery)
	}
	if c.Telemetry.MaxLogRecords <= 0 {
		add("telemetry.max_log_records: must be positive, got %d", c.Telemetry.MaxLogRecords)
	}
	if c.Telemetry.MaxSpans <= 0 {
		add("telemetry.max_spans: must be positive, got %d", c.Telemetry.MaxSpans)
	}
	if c.API.RateLimit.RequestsPerSecond <= 0 || math.IsInf(c.API.RateLimit.RequestsPerSecond, 0) {
		add("api.rate_limit.requests_per_second: must be a positive number, got %v", c.API.RateLimit.RequestsPerSecond)
	}
	if c.API.RateLimit.Burst < 1 {
		add("api.rate_limit.burst: must be at least 1, got %d", c.API.RateLimit.Burst)
	}
	if c.API.CommandTimeout <= 0 {
		add("api.command_timeout: must be positive, got %s", c.API.CommandTimeout)
	}
	if err := checkLoopback(c.API.NetAddr.Endpoint, c.API.Auth.HasValue()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.API.validate()...)

	devices := map[string]*hardware.DeviceConfig{}
	for i := range c.Hardware.Devices {
		devices[c.Hardware.Devices[i].Name] = &c.Hardware.Devices[i]
	}
	loopIdx := map[string]int{}
	for i := range c.Loops {
		if n := c.Loops[i].Name; n != "" {
			if j, dup := loopIdx[n]; dup {
				add("loops[%d].name: %q is already used by loops[%d]", i, n, j)
			}
			loopIdx[n] = i
		}
	}
	written := map[string]string{}
	for i := range c.Loops {
		errs = append(errs, c.validateLoop(i, devices, loopIdx, written)...)
	}
	return errors.Join(errs...)
}

// checkLoopback refuses an unauthenticated API reachable from the network.
func checkLoopback(endpoint string, hasAuth bool) error {
	if hasAuth {
		return nil
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return fmt.Errorf("api.endpoint: %q is not host:port: %w", endpoint, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("api.auth: required when api.endpoint (%q) is not a loopback address: the API switches heaters and motors (configure an authenticator such as bearertokenauth)", endpoint)
}

func (c *Config) validateLoop(i int, devices map[string]*hardware.DeviceConfig, loopIdx map[string]int, written map[string]string) []error {
	l := &c.Loops[i]
	key := fmt.Sprintf("loops[%d]", i)
	if l.Name != "" {
		key = fmt.Sprintf("loops[%d] (%s)", i, l.Name)
	}
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(key+"."+format, a...)) }

	if strings.TrimSpace(l.Name) == "" {
		add("name: must not be empty")
	}
	if l.Period < minPeriod || l.Period > maxPeriod {
		add("period: must be between %s and %s, got %s", minPeriod, maxPeriod, l.Period)
	}

	// Input.
	if dc, ok := devices[l.Input.Sensor]; !ok {
		add("input.sensor: %q is not a device in hardware.devices", l.Input.Sensor)
	} else {
		if r := dc.Kind.Role(); r != hardware.RoleAnalogInput && r != hardware.RoleTemperatureInput {
			add("input.sensor: %q is a %s; a loop input must be an analog or temperature sensor", l.Input.Sensor, dc.Kind)
		}
		// When the conversions do not fit the period, the timeout would only say it again.
		refused := c.checkOneWireReads(l, devices, add)
		if to := deviceTimeout(dc, c.Hardware.Timeout); !refused && l.Period > 0 && to >= l.Period {
			fix := "set hardware.devices[].timeout"
			if conv := hardware.ConversionTime(*dc); conv > 0 {
				fix = fmt.Sprintf("a 1-wire read takes its %s conversion (%s) and up to 100ms on the bus: %s",
					conv.Round(time.Millisecond), hardware.ConversionChip(*dc), hardware.ConversionAdvice(*dc, l.Period))
			}
			add("input.sensor: the read timeout of %q (%s) must be below the period (%s) so that a hung bus trips the loop within one period; %s", l.Input.Sensor, to, l.Period, fix)
		}
		// The sim's MCP9808 answers a new value on every read; the chip does not.
		if u := hardware.UpdateInterval(*dc); c.Hardware.Backend == hardware.BackendPeriph && u > 0 && l.Period > 0 && l.Period < u {
			add("input.sensor: %q (%s at %d bits) converts every %s, more slowly than the period (%s): the loop would act several times on one reading; %s",
				l.Input.Sensor, dc.Kind, hardware.Bits(*dc), u, l.Period, hardware.UpdateAdvice(*dc, l.Period))
		}
	}
	if !(l.Input.ValidRange.Min < l.Input.ValidRange.Max) {
		add("input.valid_range: min (%g) must be below max (%g)", l.Input.ValidRange.Min, l.Input.ValidRange.Max)
	}
	if l.Input.StaleAfter < 0 {
		add("input.stale_after: must not be negative, got %s", l.Input.StaleAfter)
	}

	// Output.
	if dc, ok := devices[l.Output.Actuator]; !ok {
		add("output.actuator: %q is not a device in hardware.devices", l.Output.Actuator)
	} else if r := dc.Kind.Role(); r != hardware.RoleDutyOutput && r != hardware.RoleDigitalOutput {
		add("output.actuator: %q is a %s; it must be a duty_output or gpio_output", l.Output.Actuator, dc.Kind)
	}
	if l.Output.SafeState < 0 || l.Output.SafeState > 1 {
		add("output.safe_state: must be 0..1, got %g", l.Output.SafeState)
	}
	if l.Output.Enable != "" {
		if dc, ok := devices[l.Output.Enable]; !ok {
			add("output.enable: %q is not a device in hardware.devices", l.Output.Enable)
		} else if dc.Kind.Role() != hardware.RoleDigitalOutput {
			add("output.enable: %q is a %s; it must be a gpio_output", l.Output.Enable, dc.Kind)
		}
	}
	if l.Output.Speed < 0 || l.Output.Speed > 1 {
		add("output.speed: must be 0..1, got %g", l.Output.Speed)
	}
	for _, k := range []struct{ key, dev string }{{"output.actuator", l.Output.Actuator}, {"output.enable", l.Output.Enable}} {
		if k.dev == "" {
			continue
		}
		if other, dup := written[k.dev]; dup {
			add("%s: %q is already driven by %s; one actuator has one owner", k.key, k.dev, other)
		}
		written[k.dev] = key
	}

	// Controller.
	switch {
	case (l.Controller.PID == nil) == (l.Controller.OnOff == nil):
		add("controller: set exactly one of pid and onoff")
	case l.Controller.PID != nil:
		p := l.Controller.PID
		if err := p.gains().Validate(); err != nil {
			add("controller.pid.%w", err)
		}
		if err := p.limits().Validate(); err != nil {
			add("controller.pid.%w", err)
		} else if lim := p.limits(); lim.OutMin < 0 || lim.OutMax > 1 {
			add("controller.pid: output_min and output_max must lie in 0..1 (a duty), got %g..%g", lim.OutMin, lim.OutMax)
		}
	default:
		o := l.Controller.OnOff
		if o.Hysteresis < 0 || math.IsNaN(o.Hysteresis) {
			add("controller.onoff.hysteresis: must be >= 0, got %g", o.Hysteresis)
		}
		if err := confenum.Check(o.Action, onOffActions, actionChoices); err != nil {
			add("controller.onoff.action: %w", err)
		}
	}

	// Setpoint and mode.
	sp := l.Setpoint
	if !(sp.Min < sp.Max) {
		add("setpoint.min (%g) must be below setpoint.max (%g)", sp.Min, sp.Max)
	} else if sp.Value < sp.Min || sp.Value > sp.Max {
		add("setpoint.value: %g is outside [setpoint.min, setpoint.max] = [%g, %g]", sp.Value, sp.Min, sp.Max)
	}
	if sp.MaxRate < 0 {
		add("setpoint.max_rate: must not be negative, got %g", sp.MaxRate)
	}
	if err := confenum.Check(l.Mode, loopModes, modeChoices); err != nil {
		add("mode: %w", err)
	}

	// Interlocks.
	seen := map[string]bool{}
	for j, il := range l.Interlocks {
		ik := fmt.Sprintf("interlocks[%d]", j)
		if strings.TrimSpace(il.Name) == "" {
			add("%s.name: must not be empty", ik)
		} else if seen[il.Name] {
			add("%s.name: %q is used twice", ik, il.Name)
		}
		seen[il.Name] = true
		switch {
		case (il.Sensor == "") == (il.Loop == ""):
			add("%s: set exactly one of sensor and loop", ik)
		case il.Loop != "":
			if _, ok := loopIdx[il.Loop]; !ok {
				add("%s.loop: %q is not a loop", ik, il.Loop)
			} else if il.Loop == l.Name {
				add("%s.loop: a loop cannot interlock on itself", ik)
			}
			if il.Below == nil && il.Above == nil {
				add("%s: a loop interlock needs below or above", ik)
			}
			if il.Level != nil {
				add("%s.level: only for a digital sensor", ik)
			}
		default:
			dc, ok := devices[il.Sensor]
			if !ok {
				add("%s.sensor: %q is not a device in hardware.devices", ik, il.Sensor)
				break
			}
			switch dc.Kind.Role() {
			case hardware.RoleDigitalInput:
				if il.Below != nil || il.Above != nil {
					add("%s: below/above do not apply to the digital sensor %q; use level", ik, il.Sensor)
				}
			case hardware.RoleAnalogInput, hardware.RoleTemperatureInput:
				if il.Below == nil && il.Above == nil {
					add("%s: the sensor %q needs below or above", ik, il.Sensor)
				}
				if il.Level != nil {
					add("%s.level: only for a digital sensor", ik)
				}
			default:
				add("%s.sensor: %q is a %s, not an input", ik, il.Sensor, dc.Kind)
			}
		}
	}

	// Alarms.
	builtin := len(loop.BuiltinAlarms)
	if builtin+len(l.Alarms)+len(l.Interlocks) > alarm.MaxAlarms {
		add("alarms: at most %d alarms and interlocks per loop", alarm.MaxAlarms-builtin)
	}
	names := map[string]bool{}
	for _, n := range loop.BuiltinAlarms {
		names[n] = true
	}
	for _, il := range l.Interlocks {
		if il.Latch {
			names[loop.InterlockAlarmName(il.Name)] = true
		}
	}
	for j, a := range l.Alarms {
		ak := fmt.Sprintf("alarms[%d]", j)
		if strings.TrimSpace(a.Name) == "" {
			add("%s.name: must not be empty", ak)
		} else if names[a.Name] {
			add("%s.name: %q is already used (sensor_fault, actuator_fault, plausibility and interlock_<name> are built in)", ak, a.Name)
		}
		names[a.Name] = true
		if err := confenum.Check(a.Type, alarmTypes, alarmChoices); err != nil {
			add("%s.type: %w", ak, err)
		}
		if a.Type == AlarmDeviation && a.Limit <= 0 {
			add("%s.limit: a deviation limit must be positive, got %g", ak, a.Limit)
		}
		if a.Delay < 0 {
			add("%s.delay: must not be negative, got %s", ak, a.Delay)
		}
	}
	c.validateSafety(i, add)
	return errs
}

// deviceTimeout is the per-read timeout the hardware layer gives dc, a 1-wire sensor's
// conversion included.
func deviceTimeout(dc *hardware.DeviceConfig, def time.Duration) time.Duration {
	return hardware.ReadTimeout(*dc, def)
}

func (p *PIDConfig) gains() pid.Gains {
	return pid.Gains{Kp: p.Kp, Ki: p.Ki, Kd: p.Kd, DerivativeFilter: p.DerivativeFilter.Seconds()}
}

func (p *PIDConfig) limits() pid.Limits {
	l := pid.Limits{OutMin: p.OutputMin, OutMax: p.OutputMax, IntegralMin: p.IntegralMin, IntegralMax: p.IntegralMax}
	if l.OutMin == 0 && l.OutMax == 0 {
		l.OutMax = 1
	}
	return l
}
