package sloburnprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	storageID := component.MustNewID("file_storage")
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id       string
		expected *Config
		errs     []string
	}{
		{
			id: "edge",
			expected: &Config{
				EmitInterval: 10 * time.Second, MaxSeries: 50, MaxStreams: defaultMaxStreams,
				Storage: &storageID, CheckpointInterval: 10 * time.Minute, MaxDelay: 2 * time.Minute,
				SLOs: []SLOConfig{{
					Name: "oven-deadline", Objective: 0.995,
					Total:   `controlloop.cycles{loop="oven"}`,
					Bad:     `controlloop.cycles{loop="oven",outcome=~"overrun|skipped"}`,
					GroupBy: []string{"device.id"},
				}},
			},
		},
		{
			id: "gateway",
			expected: &Config{
				EmitInterval: defaultEmitInterval, MaxSeries: defaultMaxSeries, MaxStreams: defaultMaxStreams,
				CheckpointInterval: defaultCheckpoint, MaxDelay: defaultMaxDelay,
				SLOs: []SLOConfig{
					{
						Name: "api-availability", Objective: 0.995, Period: 168 * time.Hour,
						Total:   `traces.span.metrics.calls{span.kind="SPAN_KIND_SERVER"}`,
						Good:    `traces.span.metrics.calls{span.kind="SPAN_KIND_SERVER",status.code!="STATUS_CODE_ERROR"}`,
						GroupBy: []string{"service.name"},
						Alerts:  []AlertConfig{{Severity: "page", LongWindow: time.Hour, ShortWindow: 5 * time.Minute, Factor: 14.4}},
					},
					{
						Name: "api-latency", Objective: 0.95,
						Latency: LatencyConfig{Histogram: `traces.span.metrics.duration{span.kind="SPAN_KIND_SERVER"}`, Threshold: 0.5},
					},
				},
			},
		},
		{id: "empty", errs: []string{"slos must list at least one SLO"}},
		{id: "bad_objective", errs: []string{"slos[0].objective must be between 0 and 1"}},
		{id: "both_bad_and_good", errs: []string{"slos[0] needs exactly one of bad and good next to total"}},
		{id: "latency_and_total", errs: []string{"slos[0].latency cannot be combined with total, bad or good"}},
		{id: "no_threshold", errs: []string{"slos[0].latency.threshold must be a positive bucket bound"}},
		{id: "bad_selector", errs: []string{`slos[0].total: selector "m{loop=oven}": value of "loop": expected a quoted string`}},
		{id: "duplicate_name", errs: []string{`slos[1].name "a" is used by another SLO`}},
		{id: "bad_alert", errs: []string{
			`slos[0].alerts[0].severity must be "page" or "ticket", got "critical"`,
			"slos[0].alerts[0].short_window (1h0m0s) must be shorter than long_window (5m0s)",
			"slos[0].alerts[0].factor must be positive, got 0",
		}},
		{id: "odd_window", errs: []string{
			"emit_interval must be positive, got 0s",
			"max_series must be positive, got 0",
			"max_streams must be positive, got -1",
			"checkpoint_interval must not be negative, got -1s",
			"max_delay must not be negative (0 keeps every point at its own time), got -1s",
			"slos[0].period must be a whole number of minutes, at least 1m, got 1m30s",
			`slos[0].group_by[1] must be a non-empty attribute name listed once, got "device.id"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.id).String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if len(tt.errs) > 0 {
				require.Error(t, err)
				for _, e := range tt.errs {
					assert.Contains(t, err.Error(), e)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.expected, cfg)
		})
	}
}
