package dashboards

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/alerts/contract"
)

// wantUIDs are the dashboards' uids: links, bookmarks and provisioning depend on them, so a
// change must be deliberate.
var wantUIDs = map[string]string{
	"fieldcol-fleet.json":       "fieldcol-fleet",
	"fieldcol-controlloop.json": "fieldcol-controlloop",
	"fieldcol-hardware.json":    "fieldcol-hardware",
	"fieldcol-pipeline.json":    "fieldcol-pipeline",
	"fieldcol-slo.json":         "fieldcol-slo",
	"fieldcol-commands.json":    "fieldcol-commands",
	"fieldcol-executive.json":   "fieldcol-executive",
	"fieldcol-operations.json":  "fieldcol-operations",
	"fieldcol-engineering.json": "fieldcol-engineering",
	"fieldcol-vehicle.json":     "fieldcol-vehicle",
}

// TestCommittedJSONMatchesGenerator fails when json/ drifts from the generator: run
// `make dashboards` (go run ./dashboards/cmd/gen -out dashboards/json) and commit.
func TestCommittedJSONMatchesGenerator(t *testing.T) {
	generated := map[string]bool{}
	for _, s := range All() {
		generated[s.File] = true
		want, err := Render(s.Builder)
		require.NoError(t, err, s.File)
		got, err := os.ReadFile(filepath.Join("json", s.File))
		require.NoError(t, err, "%s is not committed: run make dashboards", s.File)
		assert.True(t, bytes.Equal(want, got), "json/%s differs from the generator: run make dashboards", s.File)
	}
	files, err := filepath.Glob(filepath.Join("json", "*.json"))
	require.NoError(t, err)
	for _, f := range files {
		assert.True(t, generated[filepath.Base(f)], "%s is not produced by the generator: remove it", f)
	}
}

// TestDashboardsDecodeStrictly decodes every committed file back into the SDK's types
// (Grafana itself cannot run here) and checks what the issue asks of each dashboard.
func TestDashboardsDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("json", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, len(wantUIDs))
	panels := 0
	for _, f := range files {
		d, err := Decode(f)
		require.NoError(t, err)
		name := filepath.Base(f)
		require.NotNil(t, d.Uid, name)
		assert.Equal(t, wantUIDs[name], *d.Uid, "%s: uid", name)

		vars := map[string]dashboard.VariableModel{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v
		}
		if assert.Contains(t, vars, "datasource", name) {
			assert.Equal(t, dashboard.VariableTypeDatasource, vars["datasource"].Type)
		}
		assert.Contains(t, vars, "device_id", name)
		if name == "fieldcol-controlloop.json" {
			assert.Contains(t, vars, "loop", name)
		}

		ids := map[uint32]bool{}
		for _, p := range d.Panels {
			if p.RowPanel != nil {
				assert.False(t, ids[p.RowPanel.Id], "%s: duplicate panel id %d", name, p.RowPanel.Id)
				ids[p.RowPanel.Id] = true
				continue
			}
			require.NotNil(t, p.Panel)
			panels++
			title := deref(p.Panel.Title)
			assert.NotEmpty(t, title, "%s: a panel without a title", name)
			assert.NotEmpty(t, deref(p.Panel.Description), "%s: panel %q has no description", name, title)
			assert.NotEmpty(t, p.Panel.Targets, "%s: panel %q has no query", name, title)
			if assert.NotNil(t, p.Panel.Id) {
				assert.False(t, ids[*p.Panel.Id], "%s: duplicate panel id %d", name, *p.Panel.Id)
				ids[*p.Panel.Id] = true
			}
			if assert.NotNil(t, p.Panel.Datasource, "%s: %q", name, title) {
				assert.Equal(t, "${datasource}", deref(p.Panel.Datasource.Uid), "%s: %q must use the datasource variable", name, title)
			}
		}
	}
	t.Logf("%d dashboards, %d panels", len(files), panels)
}

// TestQueriesReadContractNamesOnly: every metric a panel reads is in the telemetry
// contract, the collector's own telemetry, or recorded by a rule of alerts/.
func TestQueriesReadContractNamesOnly(t *testing.T) {
	recorded := recordedNames(t)
	qs, err := Queries("json")
	require.NoError(t, err)
	require.NotEmpty(t, qs)
	deviceScoped := regexp.MustCompile(`device_id=~"\$device_id"`)
	read := map[string]bool{}
	for _, q := range qs {
		names := contract.MetricNames(q.Expr)
		require.NotEmpty(t, names, "%s / %s: no metric in %q", q.Dashboard, q.Panel, q.Expr)
		for _, n := range names {
			assert.True(t, contract.Allowed(n, recorded), "%s / %s reads %q, which is not in the telemetry contract", q.Dashboard, q.Panel, n)
			read[n] = true
			// Every raw metric is filtered by the device variable; recording rules aggregate
			// over the fleet and carry no device_id.
			if !recorded[n] && n != "ALERTS" { // ALERTS: Prometheus's own, fleet-wide
				assert.Regexp(t, deviceScoped, q.Expr, "%s / %s: %q ignores $device_id", q.Dashboard, q.Panel, n)
			}
		}
	}
	names := make([]string, 0, len(read))
	for n := range read {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d queries read %d metrics: %v", len(qs), len(names), names)
}

func TestExpand(t *testing.T) {
	got := Expand(`rate(x{device_id=~"$device_id",loop=~"${loop}"}[$__rate_interval])`, map[string]string{"device_id": ".*", "loop": "oven"}, "1m")
	assert.Equal(t, `rate(x{device_id=~".*",loop=~"oven"}[1m])`, got)
}

func TestProvisioningFiles(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
		} `yaml:"datasources"`
	}
	raw, err := os.ReadFile("provisioning/datasources/fieldcol.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &ds))
	assert.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string            `yaml:"type"`
			Folder  string            `yaml:"folder"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	raw, err = os.ReadFile("provisioning/dashboards/fieldcol.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &dp))
	assert.Equal(t, 1, dp.APIVersion)
	require.Len(t, dp.Providers, 1)
	assert.Equal(t, "file", dp.Providers[0].Type)
	assert.NotEmpty(t, dp.Providers[0].Options["path"])
}

func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "alerts", "rules", "*.yaml"))
	require.NoError(t, err)
	files = append(files, filepath.Join("..", "alerts", "slo", "slo-rules.yaml"))
	out := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Rules []struct {
					Record string `yaml:"record"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &rf), f)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					out[r.Record] = true
				}
			}
		}
	}
	require.NotEmpty(t, out)
	return out
}

// TestDecodeRefusesWhatGrafanaWouldNotKnow: a field unknown to the SDK's types, at the top
// or inside a panel, fails the round trip.
func TestDecodeRefusesWhatGrafanaWouldNotKnow(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("json", "fieldcol-fleet.json"))
	require.NoError(t, err)
	for name, edit := range map[string][2]string{
		"top level": {`"uid": "fieldcol-fleet",`, `"uid": "fieldcol-fleet", "uidd": "x",`},
		"panel":     {`"title": "Devices silent",`, `"title": "Devices silent", "descripton": "typo",`},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, string(raw), edit[0])
			p := filepath.Join(t.TempDir(), "d.json")
			require.NoError(t, os.WriteFile(p, bytes.Replace(raw, []byte(edit[0]), []byte(edit[1]), 1), 0o600))
			_, err := Decode(p)
			assert.ErrorContains(t, err, "round trip")
		})
	}
}
