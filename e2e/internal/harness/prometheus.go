package harness

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/dashboards"
	"github.com/fieldcol/fieldcol/internal/promtest"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// ShippedRuleFiles are the rule files Prometheus loads in production: alerts/rules, the
// central SLO rules and every other rule file under alerts/ (backups included).
func ShippedRuleFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"alerts/rules/*.yaml", "alerts/slo/slo-rules.yaml"} {
		m, err := filepath.Glob(Shipped(pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	return files
}

// QueryNow evaluates expr now and fails the test when Prometheus refuses it (a panel or
// rule with invalid PromQL must not pass as "no data").
func QueryNow(t testing.TB, prom *promtest.Server, expr string) []promtest.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	samples, err := prom.Query(ctx, expr, time.Time{})
	require.NoError(t, err, "%s", expr)
	return samples
}

// StartAlertmanager runs a real Alertmanager (the Debian package) with config on a free
// port, as a single instance without gossip, and returns its base URL once it is ready.
func StartAlertmanager(t testing.TB, config string) string {
	t.Helper()
	bin := testproc.LookPath(t, "prometheus-alertmanager", "Debian package prometheus-alertmanager")
	dir := t.TempDir()
	var url string
	testproc.Retry(t, func(ports *testproc.Ports) (*testproc.Process, error) {
		addr := ports.Addr()
		url = "http://" + addr
		p := testproc.Start(t, bin, []string{
			"--config.file=" + config,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr,
			"--cluster.listen-address=", // a single instance: no gossip port
			"--log.level=warn",
		})
		return p, testproc.WaitHTTPErr(p, url+"/-/ready", 30*time.Second)
	})
	return url
}

// PanelsWithData runs every panel query with the dashboard variables set to vars and
// $__rate_interval to rate, and returns the panels ("dashboard / panel") of which at least
// one query returned data, every panel, and the queries that returned nothing.
func PanelsWithData(t testing.TB, prom *promtest.Server, qs []dashboards.PanelQuery, vars map[string]string, rate string) (withData, panels map[string]bool, empty []string) {
	t.Helper()
	withData, panels = map[string]bool{}, map[string]bool{}
	for _, q := range qs {
		panel := q.Dashboard + " / " + q.Panel
		panels[panel] = true
		if len(QueryNow(t, prom, dashboards.Expand(q.Expr, vars, rate))) > 0 {
			withData[panel] = true
		} else {
			empty = append(empty, panel+" / "+q.RefID)
		}
	}
	return withData, panels, empty
}
