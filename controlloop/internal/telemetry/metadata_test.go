package telemetry

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/mdmetrics"
)

// TestEmittedMetricsMatchMetadata holds every metric the extension emits to
// controlloop/metadata.yaml: declared there with the same unit, type and description, and
// carrying only declared attributes. With a loop in dry run and one whose actuator fails,
// every declared metric is emitted.
func TestEmittedMetricsMatchMetadata(t *testing.T) {
	all, err := mdmetrics.Load("../../metadata.yaml")
	require.NoError(t, err)
	declared := map[string]mdmetrics.Metric{}
	for _, m := range all {
		declared[m.Name] = m
	}

	c, err := pid.New(pid.Gains{Kp: 0.5, Ki: 0.1}, pid.Limits{OutMin: 0, OutMax: 1})
	require.NoError(t, err)
	s := &sensor{v: 20}
	failing := func(context.Context, float64) error { return errors.New("i2c write failed") }
	broken, err := loop.New(loop.Spec{
		Name: "broken", Period: 10 * time.Millisecond, Input: s.read, InputName: "broken_temp",
		ValidMin: 0, ValidMax: 300, Main: loop.Output{Name: "heater2", Duty: failing},
		Kind: loop.PID, PID: c, Setpoint: 100, SetpointMax: 250,
	}, nil, nil)
	require.NoError(t, err)
	c2, err := pid.New(pid.Gains{Kp: 0.5, Ki: 0.1}, pid.Limits{OutMin: 0, OutMax: 1})
	require.NoError(t, err)
	noop := func(context.Context, float64) error { return nil }
	dryRun, err := loop.New(loop.Spec{
		Name: "dry", Period: 10 * time.Millisecond, Input: s.read, InputName: "dry_temp",
		ValidMin: 0, ValidMax: 300, Main: loop.Output{Name: "heater3", Duty: noop},
		Kind: loop.PID, PID: c2, Setpoint: 100, SetpointMax: 250, DryRun: true,
	}, nil, nil)
	require.NoError(t, err)

	tel, err := New([]*loop.Loop{newLoop(t, s), broken, dryRun}, Settings{ServiceName: "fieldcol-edge", MaxLogRecords: 100, MaxSpans: 100})
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	for _, l := range []*loop.Loop{broken, dryRun} {
		for range 3 {
			cycle(l)
		}
	}
	for range 3 {
		cycle(tel.loops[0].l)
	}
	s.set(500) // out of range: an alarm transition
	// A cycle with a raw leg, for the runtime's part of the lateness.
	now := schedule.Now()
	tel.loops[0].l.Cycle(schedule.Tick{Deadline: now - 100_000, Kernel: now - 30_000, Woke: now})
	tel.RecordCommand(CommandRecord{Command: "ACK_ALARM", Loop: "oven", Result: "invalid", Who: "anonymous", Start: time.Now(), End: time.Now()})
	tel.RecordRestart("warm", true, 2, 1)
	tel.RecordRelease(Release{Version: "1.0.0", ConfigHash: "0123456789ab", Changes: 1, Changed: true})

	ms := pmetric.NewMetrics()
	require.NoError(t, tel.CollectMetrics(ms))
	emitted := map[string]bool{}
	for name, m := range metricsByName(t, ms) {
		emitted[name] = true
		d, ok := declared[name]
		if !assert.True(t, ok, "%s is not declared in controlloop/metadata.yaml", name) {
			continue
		}
		assert.Equal(t, d.Unit, m.Unit(), name)
		// The generated builder appends the stability: "... [alpha]".
		assert.True(t, strings.HasPrefix(m.Description(), d.Description+" ["), "%s: %q", name, m.Description())
		var attrs []pcommon.Map
		switch d.Kind {
		case mdmetrics.Counter:
			require.Equal(t, pmetric.MetricTypeSum, m.Type(), name)
			assert.True(t, m.Sum().IsMonotonic(), name)
			for i := 0; i < m.Sum().DataPoints().Len(); i++ {
				attrs = append(attrs, m.Sum().DataPoints().At(i).Attributes())
			}
		case mdmetrics.UpDownCounter:
			require.Equal(t, pmetric.MetricTypeSum, m.Type(), name)
			assert.False(t, m.Sum().IsMonotonic(), name)
			for i := 0; i < m.Sum().DataPoints().Len(); i++ {
				attrs = append(attrs, m.Sum().DataPoints().At(i).Attributes())
			}
		case mdmetrics.Gauge:
			require.Equal(t, pmetric.MetricTypeGauge, m.Type(), name)
			for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
				attrs = append(attrs, m.Gauge().DataPoints().At(i).Attributes())
			}
		case mdmetrics.Histogram:
			require.Equal(t, pmetric.MetricTypeHistogram, m.Type(), name)
			for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
				attrs = append(attrs, m.Histogram().DataPoints().At(i).Attributes())
			}
		default:
			t.Fatalf("%s: the extension emits no %s", name, d.Kind)
		}
		require.NotEmpty(t, attrs, name)
		for _, a := range attrs {
			a.Range(func(key string, _ pcommon.Value) bool {
				assert.True(t, slices.Contains(d.Attributes, key), "%s carries attribute %s, which metadata.yaml does not declare", name, key)
				return true
			})
		}
	}
	for name := range declared {
		assert.True(t, emitted[name], "%s is declared but not emitted", name)
	}
}
