package hardwarereceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

// BenchmarkScrapeSim is one full scrape of eight sim devices: the device reads (which
// allocate nothing, see devread's BenchmarkReadSim) plus building and sending the pdata
// batch, which is where every allocation of a scrape is.
func BenchmarkScrapeSim(b *testing.B) {
	cfg := testConfig(
		hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ValidRange: &hardware.Range{Min: -20, Max: 150}},
		hardware.DeviceConfig{Name: "room", Kind: hardware.KindMCP9808, Signal: hardware.SignalAmbientTemperature},
		hardware.DeviceConfig{Name: "soc", Kind: hardware.KindSoCThermal},
		hardware.DeviceConfig{Name: "supply", Kind: hardware.KindADS1115},
		hardware.DeviceConfig{Name: "tach", Kind: hardware.KindADS1115, Channel: 1, Signal: hardware.SignalMotorTach},
		hardware.DeviceConfig{Name: "pot", Kind: hardware.KindMCP3008},
		hardware.DeviceConfig{Name: "door", Kind: hardware.KindGPIOInput, Pin: "GPIO17"},
		hardware.DeviceConfig{Name: "flow", Kind: hardware.KindGPIOInput, Pin: "GPIO27", Signal: hardware.SignalFlowMeter},
	)
	// A long interval keeps the receiver's own loop out of the measurement.
	cfg.CollectionInterval = 1 << 40
	cfg.InitialDelay = 1 << 40
	r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, func() {})
	require.NoError(b, err)
	r.setMetrics(consumertest.NewNop())
	require.NoError(b, r.handle().Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(b, r.handle().Shutdown(context.Background())) }()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.scrapeMetrics(ctx)
	}
}
