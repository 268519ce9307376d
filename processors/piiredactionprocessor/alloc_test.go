package piiredactionprocessor

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/metadata"
)

func cleanLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "controlloop")
	rl.Resource().Attributes().PutStr("device.id", "pi-07")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 10; i++ {
		lr := lrs.AppendEmpty()
		lr.Body().SetStr("2025-12-17T10:30:00Z INFO loop heater-1 cycle 48213 took 3.2ms setpoint=65.0 pv=64.8 duty=0.41 version 1.4.2.0")
		lr.Attributes().PutStr("loop", "heater-1")
		lr.Attributes().PutInt("cycle", 48213)
		lr.Attributes().PutStr("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
	}
	return ld
}

func TestCleanBatchDoesNotAllocate(t *testing.T) {
	cfg := hashConfig()
	cfg.Patterns = []PatternRule{{Name: "badge", Regex: `BADGE-[0-9]{6}`, Action: ActionMask}}
	p, err := newPIIProcessor(processortest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	ld := cleanLogs()
	before := logsJSON(t, ld)
	allocs := testing.AllocsPerRun(50, func() {
		_, err := p.processLogs(context.Background(), ld)
		require.NoError(t, err)
	})
	assert.Zero(t, allocs)
	assert.Equal(t, before, logsJSON(t, ld))
	require.NoError(t, p.shutdown(context.Background()))
}

func TestNeverLogsFoundValues(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	set := processortest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	p, err := newPIIProcessor(set, hashConfig())
	require.NoError(t, err)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("user " + email + " " + phone)
	_, err = p.processLogs(context.Background(), ld)
	require.NoError(t, err)
	require.NoError(t, p.shutdown(context.Background()))
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String + " " + f.Key
			if f.Interface != nil {
				if s, ok := f.Interface.(interface{ String() string }); ok {
					line += s.String()
				}
			}
		}
		assert.False(t, strings.Contains(line, email) || strings.Contains(line, "555"), line)
	}
	assert.NotEmpty(t, logs.All(), "the rule summary is logged at start")
}

func TestCleanTracesAndMetricsDoNotAllocate(t *testing.T) {
	p, err := newPIIProcessor(processortest.NewNopSettings(metadata.Type), hashConfig())
	require.NoError(t, err)
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 10; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("GET /api/missions/{id}")
		sp.Status().SetMessage("deadline exceeded after 1500ms")
		sp.Attributes().PutStr("http.route", "/api/missions/{id}")
		sp.Attributes().PutInt("http.status_code", 200)
		ev := sp.Events().AppendEmpty()
		ev.SetName("retry")
		ev.Attributes().PutInt("attempt", 2)
		sp.Links().AppendEmpty().Attributes().PutStr("kind", "follows")
	}
	md := pmetric.NewMetrics()
	dps := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyHistogram().DataPoints()
	for i := 0; i < 10; i++ {
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("loop", "heater-1")
		dp.Exemplars().AppendEmpty().FilteredAttributes().PutStr("outcome", "ok")
	}
	assert.Zero(t, testing.AllocsPerRun(50, func() {
		_, err := p.processTraces(context.Background(), td)
		require.NoError(t, err)
	}))
	assert.Zero(t, testing.AllocsPerRun(50, func() {
		_, err := p.processMetrics(context.Background(), md)
		require.NoError(t, err)
	}))
	require.NoError(t, p.shutdown(context.Background()))
}
