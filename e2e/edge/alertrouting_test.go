package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postAlerts sends alerts to Alertmanager's API as Prometheus would, each firing since a
// minute ago.
func postAlerts(t *testing.T, am string, alerts ...map[string]string) {
	t.Helper()
	var out []any
	for _, labels := range alerts {
		out = append(out, map[string]any{
			"labels":      labels,
			"annotations": map[string]string{"summary": "test", "runbook_url": runbookBase + labels["alertname"] + ".md"},
			"startsAt":    time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		})
	}
	body, err := json.Marshal(out)
	require.NoError(t, err)
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// notifications returns what reached receiver, one entry per notification, each the
// alert names it carried.
func (w *webhook) notifications(receiver string) [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]string
	for _, n := range w.received {
		if n.Receiver != receiver {
			continue
		}
		var names []string
		for _, a := range n.Alerts {
			names = append(names, a.Labels["alertname"])
		}
		out = append(out, names)
	}
	return out
}

// A gateway outage seen by the shipped alerts/alertmanager.yml: the sampler tier down
// (GatewayTierDown, outage="gateway") while Prometheus, which gets no data through it, sees
// 20 devices silent, 5 vehicles offline and old backlogs. The pager gets one notification,
// the gateway's; every per-device alert of the outage is inhibited; an unrelated latched
// alarm still pages.
func TestAlertmanagerGatewayOutagePagesOnce(t *testing.T) {
	hook, hookURL := startWebhook(t)
	am := startAlertmanager(t, hookURL)

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
	postAlerts(t, am, alerts...)

	var got []amAlert
	require.Eventually(t, func() bool {
		var err error
		if got, err = amAlerts(am); err != nil {
			return false
		}
		inhibited := 0
		for _, a := range got {
			if len(a.Status.InhibitedBy) > 0 {
				inhibited++
			}
		}
		return len(got) == len(alerts) && inhibited == 30
	}, 30*time.Second, 250*time.Millisecond, "Alertmanager did not settle on %d alerts with the 30 per-device ones inhibited: %+v", len(alerts), got)
	for _, a := range got {
		switch a.Labels["alertname"] {
		case "DeviceSilent", "VehicleOffline", "DiskQueueBacklogOld":
			assert.NotEmpty(t, a.Status.InhibitedBy, "%v", a.Labels)
		default:
			assert.Empty(t, a.Status.InhibitedBy, "%v must not be inhibited", a.Labels)
		}
	}

	// Alerts that started before group_wait are sent at once; group_interval (5 min) is
	// longer than the test, so nothing else can come.
	require.Eventually(t, func() bool { return len(hook.notifications("chat")) > 0 && len(hook.notifications("pager")) >= 2 }, 60*time.Second, 250*time.Millisecond, "nothing reached chat or the pager")
	assert.Never(t, func() bool { return len(hook.notifications("pager")) > 2 }, 3*time.Second, 250*time.Millisecond, "more pages: %v", hook.notifications("pager"))
	pager := hook.notifications("pager")
	assert.ElementsMatch(t, [][]string{{"GatewayTierDown"}, {"ControlLoopAlarmLatched"}}, pager, "the pager gets the outage once and the unrelated latch")
	assert.Equal(t, [][]string{{"GatewayInstanceDown", "GatewayInstanceDown"}}, hook.notifications("chat"), "the tier's warnings in one chat message")
	t.Logf("pager: %v; chat: %v; %d per-device alerts inhibited", pager, hook.notifications("chat"), 30)
}

// Devices that stop reporting without a gateway outage (a site's network): one
// notification lists them all, grouped by alert name, not one page per device.
func TestAlertmanagerSilentDevicesPageOnce(t *testing.T) {
	hook, hookURL := startWebhook(t)
	am := startAlertmanager(t, hookURL)
	var alerts []map[string]string
	for i := range 12 {
		alerts = append(alerts, map[string]string{"alertname": "DeviceSilent", "device_id": fmt.Sprintf("pi-%02d", i), "severity": "critical"})
	}
	postAlerts(t, am, alerts...)
	require.Eventually(t, func() bool { return len(hook.notifications("pager")) > 0 }, 60*time.Second, 250*time.Millisecond, "DeviceSilent did not page")
	assert.Never(t, func() bool { return len(hook.notifications("pager")) > 1 }, 3*time.Second, 250*time.Millisecond, "more pages: %v", hook.notifications("pager"))
	pager := hook.notifications("pager")
	require.Len(t, pager, 1, "one page for the silent devices: %v", pager)
	assert.Len(t, pager[0], 12)
}
