package edge

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// A gateway outage seen by the shipped alerts/alertmanager.yml: the sampler tier down
// (GatewayTierDown, outage="gateway") while Prometheus, which gets no data through it, sees
// 20 devices silent, 5 vehicles offline and old backlogs. The pager gets one notification,
// the gateway's; every per-device alert of the outage is inhibited; an unrelated latched
// alarm still pages.
func TestAlertmanagerGatewayOutagePagesOnce(t *testing.T) {
	hook, hookURL := harness.StartWebhook(t)
	am := harness.StartShippedAlertmanager(t, hookURL)

	alerts := []map[string]string{
		{"alertname": "GatewayTierDown", "job": "fieldcol-gateway-sampler", "severity": "critical", "tier": "gateway", "outage": "gateway"},
		{"alertname": "GatewayInstanceDown", "job": "fieldcol-gateway-sampler", "instance": "sampler-0:8888", "severity": "warning", "tier": "gateway"},
		{"alertname": "GatewayInstanceDown", "job": "fieldcol-gateway-sampler", "instance": "sampler-1:8888", "severity": "warning", "tier": "gateway"},
		{"alertname": "ControlLoopAlarmLatched", "device_id": "pi-3", "loop": "oven", "alarm": "high_limit", "latched": "true", "severity": "critical"},
	}
	for i := range 20 {
		alerts = append(alerts, map[string]string{"alertname": "DeviceSilent", "device_id": fmt.Sprintf("pi-%02d", i), "severity": "critical"})
	}
	for i := range 5 {
		alerts = append(alerts,
			map[string]string{"alertname": "VehicleOffline", "device_id": fmt.Sprintf("robot-%d", i), "severity": "warning"},
			map[string]string{"alertname": "DiskQueueBacklogOld", "device_id": fmt.Sprintf("robot-%d", i), "signal": "metrics", "severity": "warning"})
	}
	harness.PostAlerts(t, am, runbookBase, alerts...)

	got := harness.SettledAlerts(t, am, len(alerts), 30)
	for _, a := range got {
		switch a.Labels["alertname"] {
		case "DeviceSilent", "VehicleOffline", "DiskQueueBacklogOld":
			assert.NotEmpty(t, a.Status.InhibitedBy, "%v", a.Labels)
		default:
			assert.Empty(t, a.Status.InhibitedBy, "%v must not be inhibited", a.Labels)
		}
	}

	// The pager waits group_wait (10 s), chat 30 s; group_interval (5 min) is
	// longer than the test, so nothing else can come.
	require.Eventually(t, func() bool { return len(hook.Notifications("chat")) > 0 && len(hook.Notifications("pager")) >= 2 }, 60*time.Second, 250*time.Millisecond, "nothing reached chat or the pager")
	assert.Never(t, func() bool { return len(hook.Notifications("pager")) > 2 }, 3*time.Second, 250*time.Millisecond, "more pages: %v", hook.Notifications("pager"))
	pager := hook.Notifications("pager")
	assert.ElementsMatch(t, [][]string{{"GatewayTierDown"}, {"ControlLoopAlarmLatched"}}, pager, "the pager gets the outage once and the unrelated latch")
	assert.Equal(t, [][]string{{"GatewayInstanceDown", "GatewayInstanceDown"}}, hook.Notifications("chat"), "the tier's warnings in one chat message")
	t.Logf("pager: %v; chat: %v; %d per-device alerts inhibited", pager, hook.Notifications("chat"), 30)
}

// Devices that stop reporting without a gateway outage (a site's network): one
// notification lists them all, grouped by alert name, not one page per device.
func TestAlertmanagerSilentDevicesPageOnce(t *testing.T) {
	hook, hookURL := harness.StartWebhook(t)
	am := harness.StartShippedAlertmanager(t, hookURL)
	var alerts []map[string]string
	for i := range 12 {
		alerts = append(alerts, map[string]string{"alertname": "DeviceSilent", "device_id": fmt.Sprintf("pi-%02d", i), "severity": "critical"})
	}
	harness.PostAlerts(t, am, runbookBase, alerts...)
	require.Eventually(t, func() bool { return len(hook.Notifications("pager")) > 0 }, 60*time.Second, 250*time.Millisecond, "DeviceSilent did not page")
	assert.Never(t, func() bool { return len(hook.Notifications("pager")) > 1 }, 3*time.Second, 250*time.Millisecond, "more pages: %v", hook.Notifications("pager"))
	pager := hook.Notifications("pager")
	require.Len(t, pager, 1, "one page for the silent devices: %v", pager)
	assert.Len(t, pager[0], 12)
}
