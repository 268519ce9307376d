package controlloop

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
)

// TestPrometheusNames translates every metric the extension emits as the prometheus
// exporter does (unit and type suffixes) and checks the names the dashboards, the alert
// rules and the `make run` checks use.
func TestPrometheusNames(t *testing.T) {
	s := start(t, plantConfig(t, latchPath(t)), nil)
	// A refused ACK and an audited command make the command metrics appear; the fault makes
	// an alarm transition.
	require.Error(t, s.ext.Execute(context.Background(), &api.Request{Command: api.CmdAckAlarm, Loop: "oven", Alarm: ptr("sensor_fault")}))
	s.ext.RecordCommand(commandRecord())
	require.NoError(t, s.ext.Fault(faultNaN("oven_temp")))
	namer := otlptranslator.MetricNamer{WithMetricSuffixes: true}
	got := map[string]bool{}
	require.Eventually(t, func() bool {
		ms := pmetric.NewMetrics()
		require.NoError(t, s.ext.CollectMetrics(ms))
		sms := ms.ResourceMetrics().At(0).ScopeMetrics()
		for i := 0; i < sms.Len(); i++ {
			for j := 0; j < sms.At(i).Metrics().Len(); j++ {
				m := sms.At(i).Metrics().At(j)
				var typ otlptranslator.MetricType = otlptranslator.MetricTypeGauge
				switch m.Type() {
				case pmetric.MetricTypeSum:
					typ = otlptranslator.MetricTypeMonotonicCounter
				case pmetric.MetricTypeHistogram:
					typ = otlptranslator.MetricTypeHistogram
				}
				name, err := namer.Build(otlptranslator.Metric{Name: m.Name(), Unit: m.Unit(), Type: typ})
				require.NoError(t, err)
				got[name] = true
			}
		}
		return got["controlloop_alarm_transitions_total"]
	}, 5*time.Second, 10*time.Millisecond)
	for _, want := range []string{
		"controlloop_cycles_total", "controlloop_cycle_duration_seconds", "controlloop_cycle_lateness_seconds",
		"controlloop_cycle_lateness_runtime_seconds",
		"controlloop_process_value", "controlloop_setpoint", "controlloop_output_ratio", "controlloop_safe_state",
		"controlloop_alarms_active", "controlloop_alarm_transitions_total", "controlloop_commands_total",
		"controlloop_command_duration_seconds", "controlloop_telemetry_dropped_total",
	} {
		assert.True(t, got[want], "%s not emitted (got %v)", want, got)
	}
}
