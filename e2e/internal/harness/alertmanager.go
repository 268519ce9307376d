package harness

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Webhook is the test's stand-in for the pager and chat services: Alertmanager's webhook
// receivers post here, one path per receiver.
type Webhook struct {
	mu       sync.Mutex
	received []Notification
}

type Notification struct {
	// Received is when the notification reached the webhook.
	Received time.Time `json:"-"`
	Receiver string    `json:"receiver"`
	Status   string    `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// StartWebhook serves the webhook on a free port and returns it and its URL.
func StartWebhook(t testing.TB) (*Webhook, string) {
	w := &Webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var n Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		// The path names the receiver that was configured to post here.
		n.Receiver = strings.TrimPrefix(r.URL.Path, "/")
		n.Received = time.Now()
		w.mu.Lock()
		w.received = append(w.received, n)
		w.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

// Firing returns the labels and annotations of every firing alert named alertname that
// reached receiver.
func (w *Webhook) Firing(receiver, alertname string) []map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]string
	for _, n := range w.received {
		if n.Receiver != receiver {
			continue
		}
		for _, a := range n.Alerts {
			if a.Status != "firing" || a.Labels["alertname"] != alertname {
				continue
			}
			m := map[string]string{}
			for k, v := range a.Labels {
				m[k] = v
			}
			for k, v := range a.Annotations {
				m["annotation:"+k] = v
			}
			out = append(out, m)
		}
	}
	return out
}

// StartShippedAlertmanager runs a real Alertmanager with the shipped alerts/alertmanager.yml, its
// routing tree, grouping and inhibit rules unchanged; only the receivers' integrations
// (PagerDuty, Slack, which need secrets and the Internet) are replaced by webhooks to the
// test, one path per receiver. It returns Alertmanager's base URL.
func StartShippedAlertmanager(t testing.TB, webhookURL string) string {
	t.Helper()
	raw, err := os.ReadFile(Shipped("alerts/alertmanager.yml"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	receivers, ok := cfg["receivers"].([]any)
	require.True(t, ok, "alertmanager.yml has no receivers list")
	names := map[string]bool{}
	for i, r := range receivers {
		rm, ok := r.(map[string]any)
		require.True(t, ok)
		name, _ := rm["name"].(string)
		names[name] = true
		if name == "null" {
			require.Len(t, rm, 1, "the null receiver must notify nobody")
			continue
		}
		receivers[i] = map[string]any{
			"name":            name,
			"webhook_configs": []any{map[string]any{"url": webhookURL + "/" + name, "send_resolved": false}},
		}
	}
	require.Equal(t, map[string]bool{"null": true, "pager": true, "chat": true}, names)
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)

	cfgPath := filepath.Join(t.TempDir(), "alertmanager.yml")
	require.NoError(t, os.WriteFile(cfgPath, out, 0o600))
	return StartAlertmanager(t, cfgPath)
}

// AMAlert is an alert as Alertmanager's API lists it.
type AMAlert struct {
	Labels   map[string]string              `json:"labels"`
	Status   struct{ InhibitedBy []string } `json:"status"`
	Receiver []struct{ Name string }        `json:"receivers"`
}

// AlertmanagerAlerts lists the alerts Alertmanager holds.
func AlertmanagerAlerts(am string) ([]AMAlert, error) {
	resp, err := http.Get(am + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []AMAlert
	return out, json.Unmarshal(raw, &out)
}

// PostAlerts sends alerts to Alertmanager's API as Prometheus would, each firing since
// now (as Prometheus stamps an alert without for), with a summary and the runbook_url under runbookBase.
func PostAlerts(t testing.TB, am, runbookBase string, alerts ...map[string]string) {
	t.Helper()
	var out []any
	for _, labels := range alerts {
		out = append(out, map[string]any{
			"labels":      labels,
			"annotations": map[string]string{"summary": "test", "runbook_url": runbookBase + labels["alertname"] + ".md"},
			"startsAt":    time.Now().UTC().Format(time.RFC3339),
		})
	}
	body, err := json.Marshal(out)
	require.NoError(t, err)
	resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// Notifications returns what reached receiver, one entry per notification, each the
// alert names it carried.
func (w *Webhook) Notifications(receiver string) [][]string {
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

// FirstFiring returns when the first notification of receiver carrying a firing alert named
// alertname with the given labels arrived, or the zero time.
func (w *Webhook) FirstFiring(receiver, alertname string, labels map[string]string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.received {
		if n.Receiver != receiver {
			continue
		}
	alerts:
		for _, a := range n.Alerts {
			if a.Status != "firing" || a.Labels["alertname"] != alertname {
				continue
			}
			for k, v := range labels {
				if a.Labels[k] != v {
					continue alerts
				}
			}
			return n.Received
		}
	}
	return time.Time{}
}

// SettledAlerts waits until Alertmanager holds n alerts of which inhibited are inhibited,
// and returns them.
func SettledAlerts(t testing.TB, am string, n, inhibited int) []AMAlert {
	t.Helper()
	var got []AMAlert
	require.Eventually(t, func() bool {
		var err error
		if got, err = AlertmanagerAlerts(am); err != nil {
			return false
		}
		muted := 0
		for _, a := range got {
			if len(a.Status.InhibitedBy) > 0 {
				muted++
			}
		}
		return len(got) == n && muted == inhibited
	}, 30*time.Second, 250*time.Millisecond, "Alertmanager did not settle on %d alerts with %d inhibited: %+v", n, inhibited, got)
	return got
}
