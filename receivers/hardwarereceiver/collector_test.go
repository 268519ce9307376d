package hardwarereceiver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/otelcol/otelcoltest"
	"go.opentelemetry.io/collector/receiver"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

func TestCollectorLoadsTheReceiver(t *testing.T) {
	factories, err := otelcoltest.NopFactories()
	require.NoError(t, err)
	f := NewFactory()
	factories.Receivers = map[component.Type]receiver.Factory{f.Type(): f}
	cfg, err := otelcoltest.LoadConfigAndValidate(filepath.Join("testdata", "collector.yaml"), factories)
	require.NoError(t, err)
	rcfg, ok := cfg.Receivers[component.NewID(metadata.Type)].(*Config)
	require.True(t, ok)
	assert.Len(t, rcfg.Devices, 3)
	assert.Equal(t, []hardware.FaultSpec{{At: 5e9, Duration: 10e9, Device: "room_temp", Kind: hardware.FaultBusTimeout}}, rcfg.Sim.Faults)
}
