package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// TestRulesBesideSloth generates two SLOs with Sloth v0.16.0 (.tools/sloth, make builds it
// from tools/sloth) and runs them through promtool in one rule set with slo/slo-rules.yaml:
// each side records and alerts on its own SLOs only (slo/testdata/coexistence.test.yaml),
// and no record name of ours is one that Sloth writes.
func TestRulesBesideSloth(t *testing.T) {
	sloth := testproc.Tool(t, "sloth")
	dir := t.TempDir()
	generated := filepath.Join(dir, "sloth-rules.yaml")
	out, err := exec.Command(sloth, "generate", "-i", "slo/testdata/sloth-checkout.yaml", "-o", generated).CombinedOutput()
	require.NoError(t, err, "sloth generate: %s", out)

	records := func(path string) map[string]bool {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var rf struct {
			Groups []struct {
				Rules []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &rf), path)
		names := map[string]bool{}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					names[r.Record] = true
				}
			}
		}
		return names
	}
	theirs := records(generated)
	require.Contains(t, theirs, "slo:sli_error:ratio_rate5m", "Sloth's record names changed: check the rest of this test")
	for name := range records("slo/slo-rules.yaml") {
		assert.False(t, theirs[name], "fieldcol records %s, which Sloth records too", name)
	}

	for _, f := range []string{"slo/slo-rules.yaml", "slo/testdata/coexistence.test.yaml"} {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), raw, 0o600))
	}
	cmd := exec.Command(promtool(t), "check", "rules", "slo-rules.yaml", "sloth-rules.yaml")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd = exec.Command(promtool(t), "test", "rules", "coexistence.test.yaml")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}
