// These tests run the rules through promtool and the routing through amtool, and check that
// every alert has a test that fires it, a test where it stays silent, a runbook, and reads
// contract names only.
package alerts

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/alerts/contract"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// sloSeverities are the two alerts of slo/slo-rules.yaml that keep the sloburn processor's
// severity names (page, ticket): its equivalence test pins them, and Alertmanager routes
// them with critical and warning.
var sloSeverities = map[string]string{"SLOErrorBudgetBurnPage": "page", "SLOErrorBudgetBurnTicket": "ticket", "SLOErrorBudgetPolicyChanged": "ticket"}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("rules/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return append(files, "slo/slo-rules.yaml")
}

func testFiles(t *testing.T) []string {
	t.Helper()
	a, err := filepath.Glob("tests/*.test.yaml")
	require.NoError(t, err)
	b, err := filepath.Glob("slo/*.test.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, a)
	return append(a, b...)
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var out []rule
	for _, f := range ruleFiles(t) {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Rules []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &rf), f)
		for _, g := range rf.Groups {
			out = append(out, g.Rules...)
		}
	}
	return out
}

func promtool(t *testing.T) string {
	t.Helper()
	return testproc.LookPath(t, "promtool", "Debian package prometheus")
}

func amtool(t *testing.T) string {
	t.Helper()
	return testproc.LookPath(t, "amtool", "Debian package prometheus-alertmanager")
}

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), append([]string{"check", "rules"}, ruleFiles(t)...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestRulesUnitTests runs every promtool test file: each alert fires in one case and is
// silent in another (TestEveryAlertHasTestAndRunbook checks that both exist).
func TestRulesUnitTests(t *testing.T) {
	for _, f := range testFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(promtool(t), "test", "rules", filepath.Base(f))
			cmd.Dir = filepath.Dir(f)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
		})
	}
}

// TestEveryAlertHasTestAndRunbook: every alert (and each severity of an alert with two) has
// a promtool case where it fires and one where it is silent, labels and annotations of the
// issue's convention, and a runbook with the four sections; every runbook and every tested
// alert name belongs to an alert.
func TestEveryAlertHasTestAndRunbook(t *testing.T) {
	type testCase struct {
		EvalTime  string `yaml:"eval_time"`
		AlertName string `yaml:"alertname"`
		ExpAlerts []struct {
			ExpLabels map[string]string `yaml:"exp_labels"`
		} `yaml:"exp_alerts"`
	}
	firing := map[string]bool{} // alertname/severity
	silent := map[string]bool{} // alertname
	tested := map[string]bool{}
	for _, f := range testFiles(t) {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var tf struct {
			Tests []struct {
				AlertRuleTest []testCase `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &tf), f)
		for _, tc := range tf.Tests {
			for _, c := range tc.AlertRuleTest {
				tested[c.AlertName] = true
				if len(c.ExpAlerts) == 0 {
					silent[c.AlertName] = true
				}
				for _, a := range c.ExpAlerts {
					firing[c.AlertName+"/"+a.ExpLabels["severity"]] = true
				}
			}
		}
	}

	alerts := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = true
		sev := r.Labels["severity"]
		if want, ok := sloSeverities[r.Alert]; ok {
			assert.Equal(t, want, sev, "%s", r.Alert)
		} else {
			assert.Contains(t, []string{"critical", "warning", "info"}, sev, "%s: severity", r.Alert)
		}
		assert.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
		assert.NotEmpty(t, r.Annotations["description"], "%s: description", r.Alert)
		assert.Equal(t, RunbookBaseURL+r.Alert+".md", r.Annotations["runbook_url"], "%s: runbook_url", r.Alert)
		assert.True(t, firing[r.Alert+"/"+sev], "%s (severity %s) has no promtool case where it fires", r.Alert, sev)
		assert.True(t, silent[r.Alert], "%s has no promtool case where it stays silent", r.Alert)

		body, err := os.ReadFile(filepath.Join("runbooks", r.Alert+".md"))
		if assert.NoError(t, err, "%s has no runbook", r.Alert) {
			for _, section := range []string{"## Symptoms", "## Diagnosis", "## Mitigation", "## Escalation"} {
				assert.Contains(t, string(body), "\n"+section+"\n", "runbook of %s lacks %q", r.Alert, section)
			}
			// A diagnosis without a concrete query is not one.
			assert.Regexp(t, "`[^`]*(rate|increase|histogram_quantile|_total|_seconds|_bytes|_ratio|slo_|otelcol_|up\\{)[^`]*`", string(body), "runbook of %s has no query", r.Alert)
		}
	}
	for name := range tested {
		assert.True(t, alerts[name], "a promtool case tests %s, which no rule defines", name)
	}
	runbooks, err := filepath.Glob("runbooks/*.md")
	require.NoError(t, err)
	for _, rb := range runbooks {
		name := strings.TrimSuffix(filepath.Base(rb), ".md")
		assert.True(t, alerts[name], "runbook %s belongs to no alert", rb)
	}
	t.Logf("%d alerts, each with a firing and a silent promtool case and a runbook", len(alerts))
}

// TestRulesReadContractNamesOnly: every metric a rule reads is in the telemetry contract
// (or is the collector's own, or a recording rule of these files).
func TestRulesReadContractNamesOnly(t *testing.T) {
	rules := loadRules(t)
	recorded := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			recorded[r.Record] = true
		}
	}
	read := map[string]bool{}
	for _, r := range rules {
		names := contract.MetricNames(r.Expr)
		// A recording rule may be a constant inventory (device:retired:info); an alert never.
		if r.Record == "" {
			require.NotEmpty(t, names, "found no metric in %q", r.Expr)
		}
		for _, n := range names {
			assert.True(t, contract.Allowed(n, recorded), "rule %s%s reads %q, which is not in the telemetry contract", r.Alert, r.Record, n)
			read[n] = true
		}
	}
	names := make([]string, 0, len(read))
	for n := range read {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metrics read: %v", len(names), names)
}

func TestMetricNamesOfExpressions(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (device_id, hw_id) (rate(hw_errors_total{hw_id!~".+/ch[0-9]+"}[5m])) > 0.1`:                                                    {"hw_errors_total"},
		`histogram_quantile(0.95, sum by (le) (rate(controlloop_command_duration_seconds_bucket{device_id=~"$device_id"}[$__rate_interval])))`: {"controlloop_command_duration_seconds_bucket"},
		`a:b:c / on (slo) group_left (x) slo_objective > 14.4 * 0.999999 or vector(1e-9)`:                                                      {"a:b:c", "slo_objective"},
		`time() - max by (device_id) (timestamp(hw_status_ratio))`:                                                                             {"hw_status_ratio"},
		`unknown_metric + hw_gpio_level_ratio`:                                                                                                 {"hw_gpio_level_ratio", "unknown_metric"},
	} {
		assert.Equal(t, want, contract.MetricNames(expr), expr)
	}
	assert.True(t, contract.Allowed("controlloop_cycle_duration_seconds_bucket", nil))
	assert.False(t, contract.Allowed("controlloop_cycles_total_bucket", nil), "only histograms have buckets")
	assert.False(t, contract.Allowed("node_cpu_seconds_total", nil))
	assert.False(t, contract.Allowed("slo:unknown:ratio", map[string]bool{"slo:known:ratio": true}))
}

// TestAlertmanagerRouting checks the config and routes one alert of each severity.
func TestAlertmanagerRouting(t *testing.T) {
	am := amtool(t)
	out, err := exec.Command(am, "check-config", "alertmanager.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "6 inhibit rules")

	for _, c := range []struct{ labels, receiver string }{
		{"severity=critical", "pager"},
		{"severity=page", "pager"},
		{"severity=warning", "chat"},
		{"severity=ticket", "chat"},
		{"severity=info", "null"},
		{"alertname=NoSeverity", "null"},
		// The fleet-wide routes (grouped wider) keep the receiver of their severity.
		{"alertname=DeviceSilent severity=critical", "pager"},
		{"alertname=VehicleOffline severity=warning", "chat"},
		{"alertname=GatewayTierDown severity=critical tier=gateway outage=gateway", "pager"},
		{"alertname=GatewayInstanceDown severity=warning tier=gateway", "chat"},
	} {
		labels := append([]string{"device_id=pi-1"}, strings.Fields(c.labels)...)
		if !strings.Contains(c.labels, "alertname=") {
			labels = append(labels, "alertname=X")
		}
		args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + c.receiver}, labels...)
		out, err := exec.Command(am, args...).CombinedOutput()
		assert.NoError(t, err, "%s should go to %s: %s", c.labels, c.receiver, out)
	}
}

// TestAlertmanagerHoldsNoSecret: receivers read their credentials from files; a key, URL
// or token written into the config would fail here.
func TestAlertmanagerHoldsNoSecret(t *testing.T) {
	raw, err := os.ReadFile("alertmanager.yml")
	require.NoError(t, err)
	for _, forbidden := range []string{"routing_key:", "service_key:", "api_url:", "api_key:", "bot_token:", "password:", "hooks.slack.com", "credentials:"} {
		assert.NotContains(t, string(raw), forbidden)
	}
	assert.Regexp(t, regexp.MustCompile(`routing_key_file: \S+`), string(raw))
	assert.Regexp(t, regexp.MustCompile(`api_url_file: \S+`), string(raw))
}

// TestRebaseRunbooks: every shipped runbook_url moves under another base, the result is
// still valid for promtool, and a base that is not a URL is refused.
func TestRebaseRunbooks(t *testing.T) {
	dir := t.TempDir()
	total := 0
	var rebased []string
	for _, f := range ruleFiles(t) {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		out, n, err := RebaseRunbooks(raw, "https://wiki.example.com/ops/fieldcol")
		require.NoError(t, err)
		total += n
		assert.Equal(t, strings.Count(string(raw), "runbook_url:"), n, "%s: every runbook_url moves", f)
		assert.NotContains(t, string(out), RunbookBaseURL)
		assert.Regexp(t, `runbook_url: https://wiki\.example\.com/ops/fieldcol/[A-Za-z]+\.md\n`, string(out))
		p := filepath.Join(dir, filepath.Base(f))
		require.NoError(t, os.WriteFile(p, out, 0o600))
		rebased = append(rebased, p)
	}
	assert.Equal(t, 48, total, "rules with a runbook_url")
	out, err := exec.Command(promtool(t), append([]string{"check", "rules"}, rebased...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)

	for _, bad := range []string{"", "wiki/runbooks", "ftp://x/y", "https://"} {
		_, _, err := RebaseRunbooks([]byte("runbook_url: "+RunbookBaseURL+"A.md\n"), bad)
		assert.Error(t, err, "%q", bad)
	}
}

// TestRunbookQueriesAreValidPromQL: every PromQL snippet of a runbook's diagnosis (an inline
// code span that names a metric) parses, checked by promtool as the expression of a
// recording rule; placeholders such as <device> become a plain value.
func TestRunbookQueriesAreValidPromQL(t *testing.T) {
	books, err := filepath.Glob("runbooks/*.md")
	require.NoError(t, err)
	span := regexp.MustCompile("`([^`\n]+)`")
	metric := regexp.MustCompile(`\b[a-z]+(_[a-z0-9]+)+(_total|_seconds|_bytes|_ratio|_celsius|_volts|_active|_state|_alert|_rate|_objective|_remaining|_value|_setpoint|_records|_bucket|_count)\b|\b(fieldcol_)?slo:[a-z_:0-9]+|\botelcol_[a-z_]+\b|\bup\{`)
	placeholder := regexp.MustCompile(`<[a-z_]+>`)
	var b strings.Builder
	b.WriteString("groups:\n  - name: runbook-queries\n    rules:\n")
	n := 0
	perBook := map[string]int{}
	for _, f := range books {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range span.FindAllStringSubmatch(string(raw), -1) {
			q := m[1]
			// Shell commands may mention metric-like words; PromQL has no " | " pipe.
			// A name pattern (otelcol_exporter_send_failed_*) is not a query.
			if !metric.MatchString(q) || strings.Contains(q, " | ") || strings.HasPrefix(q, "curl ") || strings.HasSuffix(q, "*") {
				continue
			}
			expr := placeholder.ReplaceAllString(q, "x")
			quoted, err := yaml.Marshal(expr)
			require.NoError(t, err)
			fmt.Fprintf(&b, "      - record: runbook:query:%d\n        expr: %s", n, quoted)
			n++
			perBook[filepath.Base(f)]++
		}
	}
	for _, f := range books {
		assert.NotZero(t, perBook[filepath.Base(f)], "%s has no PromQL query", f)
	}
	p := filepath.Join(t.TempDir(), "runbook-queries.yaml")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	out, err := exec.Command(promtool(t), "check", "rules", p).CombinedOutput()
	require.NoError(t, err, "a runbook query does not parse:\n%s", out)
	t.Logf("%d runbook queries parse", n)
}
