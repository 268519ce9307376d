package edge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

const (
	residentEmail = "jane.doe@example.org"
	residentPhone = "+44 20 7946 0958"
)

func piiLogs(run string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(harness.RunKey, run)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("call " + residentPhone + " or mail " + residentEmail + " about the oven")
	lr.Attributes().PutStr("user.email", residentEmail)
	return ld
}

func piiTraces(run string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(harness.RunKey, run)
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("notify-resident")
	span.Attributes().PutStr("contact", residentEmail)
	return td
}

// sendPII sends a log and a span full of a resident's data through an edge and returns
// what arrived at the gateway sink, as JSON text.
func sendPII(t *testing.T, extraConfigs []string, env ...string) (logsJSON, tracesJSON string, ld plog.Logs, td ptrace.Traces) {
	sink := otlpsink.Start(t)
	configs := append([]string{harness.Shipped("distributions/edge/config.yaml")}, extraConfigs...)
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), configs, append(env, harness.GatewayAt(sink.ServeHTTP(t)))...)
	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := t.Name()
	require.NoError(t, client.SendLogs(ctx, piiLogs(run)))
	require.NoError(t, client.SendTraces(ctx, piiTraces(run)))
	require.Eventually(t, func() bool {
		return harness.PickLogs(sink.Logs(), run).LogRecordCount() == 1 && harness.PickTraces(sink.Traces(), run).SpanCount() == 1
	}, 30*time.Second, 100*time.Millisecond)
	ld, td = harness.PickLogs(sink.Logs(), run), harness.PickTraces(sink.Traces(), run)
	lj, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(t, err)
	tj, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	edge.Stop(t)
	return string(lj), string(tj), ld, td
}

func TestEdgeMasksPIIByDefault(t *testing.T) {
	logsJSON, tracesJSON, _, _ := sendPII(t, nil)
	for _, leaked := range []string{residentEmail, "7946", "jane.doe"} {
		assert.NotContains(t, logsJSON, leaked)
		assert.NotContains(t, tracesJSON, leaked)
	}
	assert.Contains(t, logsJSON, "about the oven", "text around the PII is kept")
	assert.Contains(t, tracesJSON, "notify-resident")
}

func TestEdgePseudonymsJoinAcrossSignals(t *testing.T) {
	_, _, ld, td := sendPII(t, []string{harness.Shipped("distributions/pii-pseudonyms.yaml")}, harness.TestHMACKey)
	logAttr, ok := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get("user.email")
	require.True(t, ok)
	spanAttr, ok := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("contact")
	require.True(t, ok)
	assert.True(t, strings.HasPrefix(logAttr.Str(), "pii_"), logAttr.Str())
	assert.Equal(t, logAttr.Str(), spanAttr.Str(), "one person, one pseudonym on every signal")
	body := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str()
	assert.NotContains(t, body, residentEmail)
	assert.Contains(t, body, logAttr.Str(), "the pseudonym in the body is the one in the attribute")
}
