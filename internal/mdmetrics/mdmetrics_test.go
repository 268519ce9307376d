package mdmetrics

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	got, err := Load("testdata/metadata.yaml")
	require.NoError(t, err)
	assert.Equal(t, []Metric{
		{Name: "otelcol.receiver.sample.duration", Unit: "s", Kind: Histogram, Description: "Duration.", Component: "sample", Telemetry: true},
		{Name: "otelcol_receiver_sample_queue", Unit: "", Kind: UpDownCounter, Description: "Queue length.", Component: "sample", Telemetry: true},
		{Name: "sample.level", Unit: "1", Kind: Gauge, Description: "A level.", Attributes: []string{"state"}, Component: "sample"},
		{Name: "sample.reads", Unit: "{read}", Kind: Counter, Description: "Reads.", Component: "sample"},
	}, got)
}

func TestLoadTree(t *testing.T) {
	// _skipped declares a metric without a unit, which Load refuses: the walk never reads it.
	_, err := LoadTree("testdata/tree")
	require.EqualError(t, err, "metric shared.name is declared by both a and b")

	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "a"), 0o755))
	b, err := os.ReadFile("testdata/tree/a/metadata.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "metadata.yaml"), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "pipeline_metrics.yaml"),
		[]byte("type: a\nmetrics:\n  pipeline.name:\n    unit: \"\"\n    sum: {value_type: double, monotonic: true}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "other.yaml"), []byte("metrics: {x: {}}\n"), 0o600))
	got, err := LoadTree(root)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "pipeline.name", got[0].Name)
	assert.Equal(t, Counter, got[0].Kind)
	assert.Equal(t, "shared.name", got[1].Name)
	assert.Equal(t, Gauge, got[1].Kind)

	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "metadata.yaml"), []byte("type: a\nmetrics:\n  x:\n    gauge: {value_type: int}\n"), 0o600))
	_, err = LoadTree(root)
	require.ErrorContains(t, err, "metric x: no unit")

	require.NoError(t, os.WriteFile(filepath.Join(root, "a", "metadata.yaml"),
		[]byte("type: a\nmetrics:\n  x:\n    unit: \"\"\n    gauge: {value_type: int}\n    attributes: [loop]\n"), 0o600))
	_, err = LoadTree(root)
	require.ErrorContains(t, err, "metric x: attribute loop is not declared under attributes")
}
