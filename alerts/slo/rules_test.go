// Package slo holds the Prometheus recording and alert rules of the SLOs that the sloburn
// processor computes at the edge; this test runs them through promtool, Prometheus' own rule
// engine.
package slo

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// promtool is skipped on a workstation without it and fails in CI, where make test installs
// the Debian package first.
func promtool(t *testing.T) string {
	t.Helper()
	return testproc.LookPath(t, "promtool", "Debian package prometheus")
}

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", "slo-rules.yaml").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestRulesUnitTests runs the alert cases: a 14.4x burn pages within 5 minutes, a 0.9x burn
// stays silent for days, 1x and 3.5x open tickets.
func TestRulesUnitTests(t *testing.T) {
	files, err := filepath.Glob("*.test.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out, err := exec.Command(promtool(t), append([]string{"test", "rules"}, files...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestRunbooksExist checks that every runbook_url is a file of this repository.
func TestRunbooksExist(t *testing.T) {
	rules, err := os.ReadFile("slo-rules.yaml")
	require.NoError(t, err)
	urls := regexp.MustCompile(`runbook_url: (\S+)`).FindAllSubmatch(rules, -1)
	require.Len(t, urls, 2)
	for _, u := range urls {
		path := filepath.Join("..", "..", string(u[1]))
		body, err := os.ReadFile(path)
		require.NoError(t, err, "runbook %s", u[1])
		assert.Contains(t, string(body), "## Mitigate", "runbook %s has a mitigation section", u[1])
	}
}
