// Package backup holds the Prometheus alert on the edge backups (BackupStale), its promtool
// test and its runbook, until they join alerts/rules, alerts/tests and alerts/runbooks.
package backup

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// The rules load and their promtool tests pass: BackupStale fires for failing and stopped
// backups and for a device that never reports one, and stays silent while backups succeed.
func TestBackupRules(t *testing.T) {
	promtool := testproc.LookPath(t, "promtool", "Debian package prometheus")
	for _, args := range [][]string{
		{"check", "rules", "backup.yaml"},
		{"test", "rules", "backup.test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}
}
