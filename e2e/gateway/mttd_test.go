package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/promtest"
)

// mttdGoal is the fleet document's Mean Time To Detect (section 1.2): under a minute.
const mttdGoal = time.Minute

// The time from a fault to the pager's notification, per alert, through the whole chain a
// fleet runs: a fieldcol-edge on the sim plant, its disk queue, the load-balancing tier and
// a sampler, Prometheus (remote write, the shipped rules, the sampler scraped as job
// fieldcol-gateway-sampler) at a production-like 15 s scrape and evaluation interval, and
// a real Alertmanager with the shipped routing whose pager is the test's webhook.
//
//   - sensor: the oven's sensor returns NaN; ControlLoopAlarmLatched pages;
//   - gateway outage: the sampler tier dies (SIGKILL); GatewayTierDown pages;
//   - device silent (make soak only, it takes 5 minutes by design): the edge stops;
//     DeviceSilent pages.
//
// Each figure is logged as "MTTD <alert>: <duration>" and checked against mttdGoal, except
// DeviceSilent, whose 5-minute threshold is above the goal on purpose (docs/mttd.md).
func TestMTTD(t *testing.T) {
	hook, hookURL := harness.StartWebhook(t)
	am := harness.StartShippedAlertmanager(t, hookURL)
	samplers := filepath.Join(t.TempDir(), "samplers.yaml")
	require.NoError(t, os.WriteFile(samplers, []byte("[]\n"), 0o600))
	prom := promtest.Start(t, promtest.Options{
		RemoteWriteReceiver: true,
		RuleFiles:           harness.ShippedRuleFiles(t),
		AlertmanagerURLs:    []string{am},
		ScrapeInterval:      15 * time.Second,
		EvaluationInterval:  15 * time.Second,
		ScrapeFiles:         map[string]string{"fieldcol-gateway-sampler": samplers},
	})
	s := startSampler(t, "sampler-0", prom.URL()+"/api/v1/write")
	require.NoError(t, os.WriteFile(samplers, []byte("- targets: ["+s.Telemetry+"]\n"), 0o600))
	lb := startLB(t, []string{s.OTLPGRPC})
	const device = "mttd-pi-1"
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"),
		[]string{harness.Shipped("distributions/edge/config.yaml"), edgeToGateway(t)},
		"FIELDCOL_DEVICE_ID="+device, harness.GatewayAt("https://"+lb.OTLPHTTP), "FIELDCOL_GATEWAY_CA_FILE="+lb.pki.CAFile)

	prom.WaitFor(t, `controlloop_safe_state{device_id="`+device+`",loop="oven"} == 0`, 120*time.Second)
	prom.WaitFor(t, `up{job="fieldcol-gateway-sampler"} == 1`, 60*time.Second)

	measure := func(alert string, labels map[string]string, fault func(), timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		fault()
		var at time.Time
		require.Eventually(t, func() bool {
			at = hook.FirstFiring("pager", alert, labels)
			return !at.IsZero()
		}, timeout, 250*time.Millisecond, "%s did not page within %s", alert, timeout)
		d := at.Sub(start)
		t.Logf("MTTD %s: %s", alert, d.Round(100*time.Millisecond))
		return d
	}

	sensor := measure("ControlLoopAlarmLatched", map[string]string{"device_id": device, "loop": "oven"}, func() {
		status, answer := edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","kind":"nan"}`)
		require.Equal(t, http.StatusOK, status, "%v", answer)
	}, 3*time.Minute)
	assert.Less(t, sensor, mttdGoal, "sensor fault to page")

	if os.Getenv("FIELDCOL_SOAK") != "" {
		// A device that stops: 5 minutes of silence by design, then the next evaluation.
		silent := measure("DeviceSilent", map[string]string{"device_id": device}, func() { edge.Stop(t) }, 8*time.Minute)
		assert.Less(t, silent, 5*time.Minute+mttdGoal, "device silent to page")
	}

	gateway := measure("GatewayTierDown", map[string]string{"job": "fieldcol-gateway-sampler"}, func() { s.Proc.Kill() }, 4*time.Minute)
	assert.Less(t, gateway, mttdGoal, "gateway outage to page")
	lb.Stop(t)
}
