package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/mdmetrics"
)

// TestCommittedContractIsGenerated fails when a metadata.yaml changed and
// generated_contract.go was not regenerated (make generate).
func TestCommittedContractIsGenerated(t *testing.T) {
	want, err := generate("../../../..")
	require.NoError(t, err)
	got, err := os.ReadFile("../../generated_contract.go")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "alerts/contract/generated_contract.go is stale: run make generate")
}

func TestPrometheusName(t *testing.T) {
	tests := []struct {
		m    mdmetrics.Metric
		want string
	}{
		{mdmetrics.Metric{Name: "controlloop.cycles", Kind: mdmetrics.Counter}, "controlloop_cycles_total"},
		{mdmetrics.Metric{Name: "controlloop.cycle.duration", Unit: "s", Kind: mdmetrics.Histogram}, "controlloop_cycle_duration_seconds"},
		{mdmetrics.Metric{Name: "controlloop.safe_state", Kind: mdmetrics.Gauge}, "controlloop_safe_state"},
		{mdmetrics.Metric{Name: "controlloop.output", Unit: "1", Kind: mdmetrics.Gauge}, "controlloop_output_ratio"},
		{mdmetrics.Metric{Name: "hw.temperature", Unit: "Cel", Kind: mdmetrics.Gauge}, "hw_temperature_celsius"},
		{mdmetrics.Metric{Name: "otelcol.exporter.diskqueue.size", Unit: "By", Kind: mdmetrics.Gauge}, "otelcol_exporter_diskqueue_size_bytes"},
		{mdmetrics.Metric{Name: "otelcol.exporter.diskqueue.records", Unit: "{record}", Kind: mdmetrics.Gauge}, "otelcol_exporter_diskqueue_records"},
		{mdmetrics.Metric{Name: "otelcol_processor_piiredaction_redactions", Unit: "{redaction}", Kind: mdmetrics.Counter}, "otelcol_processor_piiredaction_redactions_total"},
		{mdmetrics.Metric{Name: "queue.length", Kind: mdmetrics.UpDownCounter}, "queue_length"},
	}
	for _, tt := range tests {
		got, err := prometheusName(tt.m)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, tt.m.Name)
	}
}
