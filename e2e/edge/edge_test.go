package edge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
)

// stripAdded removes the resource attributes the edge adds, leaving what the client sent.
func stripAdded(attrs pcommon.Map, t *testing.T) {
	t.Helper()
	host, ok := attrs.Get("host.name")
	require.True(t, ok, "host.name missing")
	assert.Equal(t, "e2e-host", host.Str())
	dev, ok := attrs.Get("device.id")
	require.True(t, ok, "device.id missing")
	assert.Equal(t, "pi-oven-7", dev.Str())
	attrs.Remove("host.name")
	attrs.Remove("device.id")
}

func TestEdgeForwardsOTLPUnchanged(t *testing.T) {
	sink := otlpsink.Start(t)
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{harness.Shipped("distributions/edge/config.yaml")},
		harness.GatewayAt(sink.ServeHTTP(t)), "FIELDCOL_HOST_NAME=e2e-host", "FIELDCOL_DEVICE_ID=pi-oven-7")

	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	run := t.Name()
	require.NoError(t, client.SendTraces(ctx, harness.SampleTraces(run)))
	require.NoError(t, client.SendMetrics(ctx, harness.SampleMetrics(run)))
	require.NoError(t, client.SendLogs(ctx, harness.SampleLogs(run)))

	require.Eventually(t, func() bool {
		return harness.PickTraces(sink.Traces(), run).SpanCount() == 3 &&
			harness.PickMetrics(sink.Metrics(), run).DataPointCount() == 2 &&
			harness.PickLogs(sink.Logs(), run).LogRecordCount() == 3
	}, 30*time.Second, 100*time.Millisecond, "the sink did not get everything that was sent")

	gotTraces := harness.PickTraces(sink.Traces(), run)
	stripAdded(gotTraces.ResourceSpans().At(0).Resource().Attributes(), t)
	assertSameTraces(t, harness.SampleTraces(run), gotTraces)

	gotMetrics := harness.PickMetrics(sink.Metrics(), run)
	stripAdded(gotMetrics.ResourceMetrics().At(0).Resource().Attributes(), t)
	assertSameMetrics(t, harness.SampleMetrics(run), gotMetrics)

	gotLogs := harness.PickLogs(sink.Logs(), run)
	stripAdded(gotLogs.ResourceLogs().At(0).Resource().Attributes(), t)
	assertSameLogs(t, harness.SampleLogs(run), gotLogs)

	edge.Stop(t)
}

func TestEdgeServesHealthAndMetrics(t *testing.T) {
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"),
		[]string{harness.Shipped("distributions/edge/config.yaml")},
		"FIELDCOL_DEVICE_ID=pi-oven-7")

	assert.Contains(t, harness.HTTPGet(t, "http://"+edge.Health+"/"), "Server available")

	client, err := otlpsink.Dial(edge.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, client.SendMetrics(ctx, harness.SampleMetrics(t.Name())))

	// The collector's own metrics reach the pipeline through its OTLP push (every 15 s) and
	// every series carries the device's id.
	var body string
	require.Eventually(t, func() bool {
		body = harness.HTTPGet(t, "http://"+edge.Metrics+"/metrics")
		return strings.Contains(body, "otelcol_receiver_accepted_metric_points") &&
			strings.Contains(body, "e2e_belt_speed")
	}, 60*time.Second, 500*time.Millisecond, "self-telemetry or the sent metric did not reach the prometheus exporter")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "e2e_belt_speed") || strings.HasPrefix(line, "otelcol_receiver_accepted_metric_points") {
			assert.Contains(t, line, `device_id="pi-oven-7"`, line)
			assert.Contains(t, line, `host_name="`, line)
		}
	}

	// The collector's own metrics are also served for a direct scrape.
	assert.Contains(t, harness.HTTPGet(t, "http://"+edge.Telemetry+"/metrics"), "otelcol_process_uptime")

	edge.Stop(t)
	assert.Contains(t, edge.Proc.Log(), "Shutdown complete")
}

func assertSameTraces(t *testing.T, want, got ptrace.Traces) {
	t.Helper()
	m := &ptrace.JSONMarshaler{}
	w, err := m.MarshalTraces(want)
	require.NoError(t, err)
	g, err := m.MarshalTraces(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(g))
}

func assertSameMetrics(t *testing.T, want, got pmetric.Metrics) {
	t.Helper()
	m := &pmetric.JSONMarshaler{}
	w, err := m.MarshalMetrics(want)
	require.NoError(t, err)
	g, err := m.MarshalMetrics(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(g))
}

func assertSameLogs(t *testing.T, want, got plog.Logs) {
	t.Helper()
	m := &plog.JSONMarshaler{}
	w, err := m.MarshalLogs(want)
	require.NoError(t, err)
	g, err := m.MarshalLogs(got)
	require.NoError(t, err)
	assert.JSONEq(t, string(w), string(g))
}

// What `make run` runs: the full distribution with the edge config.
func TestFullDistributionRunsTheEdgeConfig(t *testing.T) {
	c := harness.StartCollector(t, harness.Binary(t, "fieldcol"), []string{harness.Shipped("distributions/edge/config.yaml")})
	assert.Contains(t, harness.HTTPGet(t, "http://"+c.Health+"/"), "Server available")
	require.Eventually(t, func() bool {
		return strings.Contains(harness.HTTPGet(t, "http://"+c.Metrics+"/metrics"), "otelcol_")
	}, 60*time.Second, 500*time.Millisecond, "no metrics on the prometheus exporter")
	c.Stop(t)
}
