package dashboards

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// edgeLoopUnits reads each loop's unit from the shipped edge config.
func edgeLoopUnits(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "distributions", "edge", "config.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Extensions struct {
			Controlloop struct {
				Loops []struct{ Name, Unit string } `yaml:"loops"`
			} `yaml:"controlloop"`
		} `yaml:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	out := map[string]string{}
	for _, l := range cfg.Extensions.Controlloop.Loops {
		out[l.Name] = l.Unit
	}
	require.NotEmpty(t, out)
	return out
}

// TestDashboardsLint runs Lint over every committed dashboard.
func TestDashboardsLint(t *testing.T) {
	units := edgeLoopUnits(t)
	files, err := filepath.Glob(filepath.Join("json", "*.json"))
	require.NoError(t, err)
	for _, f := range files {
		d, err := Decode(f)
		require.NoError(t, err)
		assert.Empty(t, Lint(d, units), "%s", f)
	}
}

// TestLintFindsWhatItLooksFor: each problem the lint knows, planted in a committed
// dashboard, is reported.
func TestLintFindsWhatItLooksFor(t *testing.T) {
	units := edgeLoopUnits(t)
	for name, c := range map[string]struct {
		file, from, to, want string
	}{
		"stat without thresholds": {"fieldcol-fleet.json", `"value": 1,
                "color": "red"`, `"value": 1,
                "color": "green"`, "no thresholds of two colors"},
		"panel without unit":     {"fieldcol-fleet.json", `"unit": "celsius"`, `"unit": ""`, `"SoC temperature" has no unit`},
		"rate on a seconds axis": {"fieldcol-pipeline.json", `"value": "ops"`, `"value": "s"`, "is in 1/s but drawn on an axis of \"s\""},
		"two loops on one axis": {"fieldcol-controlloop.json", `loop=\"oven\"}",
          "instant": false,
          "legendFormat": "pv {{device_id}}"`, `loop=~\"$loop\"}",
          "instant": false,
          "legendFormat": "pv {{device_id}}"`, "read one loop"},
		"age of a raw series": {"fieldcol-fleet.json", `time() - device:last_seen:timestamp{device_id=~\"$device_id\"}"`, `time() - max by (device_id) (timestamp(hw_status_ratio{device_id=~\"$device_id\"}))"`, "goes stale"},
		"variable without current value": {"fieldcol-slo.json", `"current": {
          "selected": true,
          "text": "All",
          "value": "$__all"
        },`, ``, "device_id has no current value"},
		"device_id from one metric": {"fieldcol-hardware.json", `"query": "label_values(device_id)"`, `"query": "label_values(hw_status_ratio, device_id)"`, "label_values(device_id)"},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("json", c.file))
			require.NoError(t, err)
			require.Contains(t, string(raw), c.from)
			p := filepath.Join(t.TempDir(), c.file)
			require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(raw), c.from, c.to, 1)), 0o600))
			d, err := Decode(p)
			require.NoError(t, err)
			problems := Lint(d, units)
			assert.Condition(t, func() bool {
				for _, p := range problems {
					if strings.Contains(p, c.want) {
						return true
					}
				}
				return false
			}, "want a problem with %q, got %q", c.want, problems)
		})
	}
}
