package hardwarereceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{
			id: component.NewIDWithName(metadata.Type, "sim"),
			want: &Config{
				ControllerConfig: func() scraperhelper.ControllerConfig {
					c := scraperhelper.NewDefaultControllerConfig()
					c.CollectionInterval, c.InitialDelay, c.Timeout = 5*time.Second, time.Second, 200*time.Millisecond
					return c
				}(),
				BridgeInterval: time.Second,
				FailAfter:      2,
				ControlLoop:    new(component.MustNewIDWithName("controlloop", "oven")),
				Config: hardware.Config{
					Backend: hardware.BackendSim,
					Timeout: 200 * time.Millisecond,
					Devices: []hardware.DeviceConfig{
						{Name: "tank_temp", Kind: hardware.KindDS18B20, Signal: hardware.SignalHeaterTemperature,
							ValidRange: &hardware.Range{Min: -20, Max: 150}, StuckAfter: 5},
						{Name: "supply", Kind: hardware.KindADS1115, Channel: 1, Scale: 2, Signal: hardware.SignalSupplyVoltage},
						{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17", Edge: "both"},
					},
					Sim: hardware.SimConfig{
						Seed: 42, TimeScale: 60,
						Heater: hardware.SimHeaterConfig{TimeConstant: time.Minute},
						Faults: []hardware.FaultSpec{{At: 3 * time.Second, Duration: 4 * time.Second, Device: "tank_temp", Kind: hardware.FaultBusTimeout}},
					},
				},
				MetricsBuilderConfig: metadata.NewDefaultMetricsBuilderConfig(),
			},
		},
		{
			id: component.NewIDWithName(metadata.Type, "pi"),
			want: func() *Config {
				c := createDefaultConfig().(*Config)
				c.Backend = hardware.BackendPeriph
				c.Devices = []hardware.DeviceConfig{
					{Name: "tank_temp", Kind: hardware.KindDS18B20, Address: 0xee0000075b4a2f28},
					{Name: "line_voltage", Kind: hardware.KindADS1115, Bus: "1", Address: 0x48, FullScale: 4.096, DataRate: 128},
					{Name: "pot", Kind: hardware.KindMCP3008, Bus: "SPI0.0", Channel: 3},
					{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17", Pull: "up", ActiveLow: true},
					{Name: "soc", Kind: hardware.KindSoCThermal},
				}
				return c
			}(),
		},
		{id: component.NewIDWithName(metadata.Type, "readme_sim")},
		{id: component.NewIDWithName(metadata.Type, "readme_pi")},
		{id: component.NewIDWithName(metadata.Type, "bad_interval"), wantErr: "collection_interval: must be positive, got 0s"},
		{id: component.NewIDWithName(metadata.Type, "bad_timeout"), wantErr: "timeout: the per-read timeout (2s) must be shorter than collection_interval (1s)"},
		{id: component.NewIDWithName(metadata.Type, "bad_controlloop"), wantErr: `'controlloop' in "control loop" id: invalid character(s) in type`},
		{id: component.NewIDWithName(metadata.Type, "bad_device"), wantErr: `'devices[0].kind' "thermocouple" is not one of`},
		{id: component.NewIDWithName(metadata.Type, "bad_fail_after"), wantErr: "fail_after: must be at least 1, got 0"},
		{id: component.NewIDWithName(metadata.Type, "bad_bridge_interval"), wantErr: "bridge_interval: must be positive, got 0s"},
		{id: component.NewIDWithName(metadata.Type, "bad_fault"), wantErr: `'sim.faults[0].kind' "melt" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			// A malformed id is refused at decode, other errors by Validate.
			err = sub.Unmarshal(cfg)
			if err == nil {
				err = confmap.Validate(cfg)
			}
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			got := cfg.(*Config)
			if tt.id.Name() == "sim" {
				// The user's choice is recorded in an unexported field: check the effect and
				// compare the rest.
				assert.False(t, got.Metrics.HwGpioEdges.Enabled)
				got.MetricsBuilderConfig = metadata.NewDefaultMetricsBuilderConfig()
			}
			if tt.want == nil {
				return // valid is all that is checked
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestTimeoutKeyBoundsEachRead: timeout is the scraper key of every receiver, and here it
// is the per-read timeout of a device without its own: a hung bus costs a scrape that
// much, not the hardware default of 250ms.
func TestTimeoutKeyBoundsEachRead(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		// Long enough that the receiver's own loop never scrapes during the test.
		"collection_interval": "1h",
		"initial_delay":       "1h",
		"timeout":             "20ms",
		"devices":             []any{map[string]any{"name": "hung", "kind": "mcp9808"}},
		"sim": map[string]any{"faults": []any{
			map[string]any{"at": "0s", "duration": "1h", "device": "hung", "kind": "bus_timeout"},
		}},
	}).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, 20*time.Millisecond, cfg.ControllerConfig.Timeout)
	assert.Equal(t, cfg.ControllerConfig.Timeout, cfg.Config.Timeout, "one key, both fields")

	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, func() {})
	require.NoError(t, err)
	sink := new(consumertest.MetricsSink)
	r.setMetrics(sink)
	require.NoError(t, r.handle().Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.handle().Shutdown(context.Background())) })
	// The fastest of three scrapes, so that a stall of this busy machine does not count.
	fastest := time.Hour
	for range 3 {
		began := time.Now()
		r.scrapeMetrics(context.Background())
		took := time.Since(began)
		require.GreaterOrEqual(t, took, 20*time.Millisecond, "the read waited for its timeout")
		fastest = min(fastest, took)
	}
	assert.Less(t, fastest, 200*time.Millisecond, "the read was bounded by timeout, not by the 250ms default")
	n, ok := find(last(sink), "hw.errors", map[string]any{"hw.id": "i2c1/0x18", "error.type": "timeout"})
	require.True(t, ok)
	assert.Equal(t, 3.0, n)
}

// TestTimeoutFieldsOfAConfigBuiltInCode: the two fields decoded from timeout can only
// differ in code, and Validate refuses that rather than pick one silently.
func TestTimeoutFieldsOfAConfigBuiltInCode(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	cfg.ControllerConfig.Timeout = 100 * time.Millisecond
	require.ErrorContains(t, cfg.Validate(), "timeout: Config.Timeout (250ms) and ControllerConfig.Timeout (100ms) differ: they are the one key timeout, set both")
	cfg.Config.Timeout = 100 * time.Millisecond
	require.NoError(t, cfg.Validate())
}
