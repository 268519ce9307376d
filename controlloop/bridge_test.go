package controlloop

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver"
)

// TestHardwareReceiverBridge runs the extension with the real hardware receiver pointed at
// it, as the edge default config does: the receiver skips the loops' devices, reads its
// own, and forwards the loops' metrics, events and spans.
func TestHardwareReceiverBridge(t *testing.T) {
	cfg := plantConfig(t, latchPath(t))
	cfg.Telemetry.TraceEvery = 5
	e := newExtension(cfg, settings()) // its registry is shared with the receiver that names it
	id := component.MustNewID("controlloop")
	h := &host{exts: map[component.ID]component.Component{id: e, authID: &tokenAuth{token: "s3cret"}}}
	require.NoError(t, e.Start(context.Background(), h))
	defer func() { require.NoError(t, e.Shutdown(context.Background())) }()

	f := hardwarereceiver.NewFactory()
	rcfg := f.CreateDefaultConfig().(*hardwarereceiver.Config)
	rcfg.CollectionInterval = 50 * time.Millisecond
	rcfg.InitialDelay = 0
	rcfg.ControllerConfig.Timeout, rcfg.Config.Timeout = 20*time.Millisecond, 20*time.Millisecond
	rcfg.ControlLoop = &id
	rcfg.Devices = []hardware.DeviceConfig{
		{Name: "oven_temp", Kind: hardware.KindMCP9808}, // owned by the oven loop: skipped
		{Name: "supply", Kind: hardware.KindADS1115, Channel: 1, Signal: hardware.SignalSupplyVoltage},
	}
	set := receivertest.NewNopSettings(f.Type())
	metrics, logs, traces := new(consumertest.MetricsSink), new(consumertest.LogsSink), new(consumertest.TracesSink)
	mr, err := f.CreateMetrics(context.Background(), set, rcfg, metrics)
	require.NoError(t, err)
	lr, err := f.CreateLogs(context.Background(), set, rcfg, logs)
	require.NoError(t, err)
	tr, err := f.CreateTraces(context.Background(), set, rcfg, traces)
	require.NoError(t, err)
	for _, r := range []component.Component{mr, lr, tr} {
		require.NoError(t, r.Start(context.Background(), h))
	}
	defer func() {
		for _, r := range []component.Component{mr, lr, tr} {
			require.NoError(t, r.Shutdown(context.Background()))
		}
	}()

	require.NoError(t, e.Fault(faultNaN("oven_temp")))
	want := []string{"controlloop.cycles", "controlloop.cycle.lateness", "controlloop.safe_state", "hw.voltage"}
	assert.Eventually(t, func() bool {
		seen := map[string]bool{}
		for _, md := range metrics.AllMetrics() {
			for _, n := range metricNames(md) {
				seen[n] = true
			}
		}
		for _, n := range want {
			if !seen[n] {
				return false
			}
		}
		return logs.LogRecordCount() > 0 && traces.SpanCount() > 0
	}, 10*time.Second, 10*time.Millisecond, "loop metrics, events and spans arrive through the receiver")
	for _, md := range metrics.AllMetrics() {
		for _, n := range metricNames(md) {
			if n == "hw.temperature" {
				t.Fatal("the receiver read oven_temp, which the oven loop owns")
			}
		}
	}
}

func metricNames(md pmetric.Metrics) []string {
	var out []string
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		sms := md.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			for k := 0; k < sms.At(j).Metrics().Len(); k++ {
				out = append(out, sms.At(j).Metrics().At(k).Name())
			}
		}
	}
	return out
}
