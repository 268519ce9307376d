package hardwarereceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

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
				CollectionInterval: 5 * time.Second,
				InitialDelay:       time.Second,
				BridgeInterval:     time.Second,
				FailAfter:          2,
				ControlLoop:        "controlloop/oven",
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
		{id: component.NewIDWithName(metadata.Type, "bad_controlloop"), wantErr: `controlloop: "control loop" is not a component id`},
		{id: component.NewIDWithName(metadata.Type, "bad_device"), wantErr: `devices[0] (tank_temp).kind: "thermocouple" is not one of`},
		{id: component.NewIDWithName(metadata.Type, "bad_fail_after"), wantErr: "fail_after: must be at least 1, got 0"},
		{id: component.NewIDWithName(metadata.Type, "bad_bridge_interval"), wantErr: "bridge_interval: must be positive, got 0s"},
		{id: component.NewIDWithName(metadata.Type, "bad_fault"), wantErr: `sim.faults[0].kind: "melt" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
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
