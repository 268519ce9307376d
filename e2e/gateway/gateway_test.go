package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/otlpsink"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// The gateway accepts OTLP from the fleet and a real Prometheus scrapes what it serves,
// including the RED metrics it derives from spans.
func TestGatewayAcceptsOTLPAndPrometheusScrapes(t *testing.T) {
	gw := harness.StartCollector(t, harness.Binary(t, "fieldcol-gateway"), []string{harness.Shipped("distributions/gateway/config.yaml")})
	prom := promtest.Start(t, promtest.Options{ScrapeTargets: []string{gw.Metrics}})

	client, err := otlpsink.Dial(gw.OTLPGRPC)
	require.NoError(t, err)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := t.Name()
	require.NoError(t, client.SendMetrics(ctx, harness.SampleMetrics(run)))
	require.NoError(t, client.SendTraces(ctx, harness.SampleTraces(run)))
	require.NoError(t, client.SendLogs(ctx, harness.SampleLogs(run)))

	got := prom.WaitFor(t, `e2e_belt_speed_meters_per_second{belt="b1"}`, 60*time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, 0.75, got[0].Value)
	assert.Equal(t, "conveyor-app", got[0].Labels["service_name"])

	pallets := prom.WaitFor(t, `e2e_pallets_total`, 30*time.Second)
	assert.Equal(t, 1234.0, pallets[0].Value)

	// span_metrics turns the three spans (one an error) into calls per status.
	// span_metrics turns the three spans (one an error) into calls per status.
	want := map[string]float64{"STATUS_CODE_UNSET": 2, "STATUS_CODE_ERROR": 1}
	var byStatus map[string]float64
	assert.Eventually(t, func() bool {
		samples, err := prom.Query(ctx, `sum by (status_code) (traces_span_metrics_calls_total{service_name="conveyor-app"})`, time.Time{})
		if err != nil {
			return false
		}
		byStatus = map[string]float64{}
		for _, s := range samples {
			byStatus[s.Labels["status_code"]] = s.Value
		}
		return assert.ObjectsAreEqual(want, byStatus)
	}, 60*time.Second, 500*time.Millisecond, "span metrics per status: got %v, want %v", byStatus, want)

	gw.Stop(t)
}
