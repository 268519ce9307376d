package controlloop

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/controlloop/internal/metadata"
	"github.com/fieldcol/fieldcol/controlloop/internal/telemetry"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/hardware/sim"
	"github.com/fieldcol/fieldcol/internal/hardware/sim/plant"
)

func ptr[T any](v T) *T { return &v }

// plantConfig is the oven and conveyor of the edge default config on a plant running 60
// times faster than real time: the heater's 2-minute time constant becomes 2 s.
func plantConfig(t *testing.T, latchFile string) *Config {
	t.Helper()
	cfg := createDefaultConfig()
	cfg.API.NetAddr.Endpoint = "localhost:0"
	cfg.LatchFile = latchFile
	cfg.Watchdog.Enabled = false
	cfg.Telemetry.TraceEvery = 10
	cfg.Hardware = hardware.Config{
		Backend: hardware.BackendSim,
		Timeout: 5 * time.Millisecond,
		Devices: []hardware.DeviceConfig{
			{Name: "oven_temp", Kind: hardware.KindMCP9808},
			{Name: "heater_ssr", Kind: hardware.KindDutyOutput, Signal: hardware.SignalHeater},
			{Name: "motor_tach", Kind: hardware.KindADS1115, Signal: hardware.SignalMotorTach, Scale: 3000 / 3.3},
			{Name: "motor_speed", Kind: hardware.KindDutyOutput, Signal: hardware.SignalMotorSpeed},
			{Name: "motor_enable", Kind: hardware.KindGPIOOutput, Signal: hardware.SignalMotorEnable},
			{Name: "door_closed", Kind: hardware.KindGPIOInput, Signal: hardware.SignalDoor},
		},
		Sim: hardware.SimConfig{Seed: 7, TimeScale: 60},
	}
	cfg.Loops = []LoopConfig{
		{
			Name: "oven", Period: 20 * time.Millisecond, Unit: "Cel",
			Input:      InputConfig{Sensor: "oven_temp", ValidRange: hardware.Range{Min: -20, Max: 150}},
			Output:     OutputConfig{Actuator: "heater_ssr"},
			Controller: ControllerConfig{PID: &PIDConfig{Kp: 0.1, Ki: 0.075, OutputMax: 1}},
			Setpoint:   SetpointConfig{Value: 60, Min: 0, Max: 75, LimitMargin: 3},
			Alarms: []AlarmConfig{
				{Name: "high_limit", Type: "high", Limit: 78},
			},
		},
		{
			Name: "conveyor", Period: 20 * time.Millisecond, Unit: "rpm",
			Input:      InputConfig{Sensor: "motor_tach", ValidRange: hardware.Range{Min: -100, Max: 3500}},
			Output:     OutputConfig{Actuator: "motor_speed", Enable: "motor_enable", Speed: 0.8},
			Controller: ControllerConfig{OnOff: &OnOffConfig{Hysteresis: 200}},
			Setpoint:   SetpointConfig{Value: 1500, Min: 0, Max: 3000},
			Interlocks: []InterlockConfig{{Name: "door_closed", Sensor: "door_closed", Level: ptr(true)}},
		},
	}
	return cfg
}

// tokenAuth is a server authenticator like bearertokenauth: it accepts one bearer token.
type tokenAuth struct {
	extensionauth.Server
	token string
}

func (a *tokenAuth) Start(context.Context, component.Host) error { return nil }
func (a *tokenAuth) Shutdown(context.Context) error              { return nil }
func (a *tokenAuth) Authenticate(ctx context.Context, h map[string][]string) (context.Context, error) {
	if v := h["Authorization"]; len(v) == 1 && v[0] == "Bearer "+a.token {
		return ctx, nil
	}
	return ctx, errors.New("missing or wrong bearer token")
}

type host struct {
	exts map[component.ID]component.Component
}

func (h *host) GetExtensions() map[component.ID]component.Component { return h.exts }

var authID = component.MustNewID("bearertokenauth")

func withAuth(cfg *Config) {
	cfg.API.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
}

// started is a running extension on its own hardware registry, so tests do not share a plant.
type started struct {
	ext     *controlLoop
	session *hardware.Session
	reg     *hardware.Registry
}

func settings() extension.Settings {
	set := extensiontest.NewNopSettings(metadata.Type)
	set.Logger = zap.NewNop()
	set.BuildInfo.Command = "fieldcol-edge"
	return set
}

func start(t *testing.T, cfg *Config, reg *hardware.Registry) *started {
	t.Helper()
	return startWith(t, cfg, reg, settings())
}

// startWith is start with the extension's settings given (a build version, for one).
func startWith(t *testing.T, cfg *Config, reg *hardware.Registry, set extension.Settings) *started {
	t.Helper()
	require.NoError(t, cfg.Validate())
	if reg == nil {
		reg = backends.NewRegistry(nil)
	}
	e := newExtension(cfg, set)
	e.registry = reg
	h := &host{exts: map[component.ID]component.Component{authID: &tokenAuth{token: "s3cret"}}}
	require.NoError(t, e.Start(context.Background(), h))
	s := &started{ext: e, session: e.session, reg: reg}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return s
}

func (s *started) plant() *plant.Plant { return sim.Plant(s.session) }

func latchPath(t *testing.T) string { return filepath.Join(t.TempDir(), "latches.json") }

func faultNaN(device string) *api.FaultRequest {
	return &api.FaultRequest{Device: device, Kind: string(hardware.FaultNaN)}
}

func commandRecord() telemetry.CommandRecord {
	now := time.Now()
	return telemetry.CommandRecord{Command: api.CmdSetMode, Loop: "oven", Result: api.ResultInvalid, Who: "anonymous", Start: now, End: now}
}
