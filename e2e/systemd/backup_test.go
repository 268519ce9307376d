package systemd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

const latchFile = "/var/lib/fieldcol/controlloop/latches.json"

// backupAndRestore configures the backups as docs/disaster-recovery.md says, shortens the
// timer with a drop-in and waits for it to fire: fieldcol-backup.service backs up to a
// versitygw with restic. Then the state and config are lost, and fieldcol-restore brings them
// back and starts the edge in dry run through systemd.
//
// versitygw is this machine's .tools/versitygw, run by the test on the loopback of the
// container's network namespace (the container has no other network; the edge there keeps
// its shipped default ports).
func backupAndRestore(t *testing.T, m *machine, s scale) {
	store := harness.S3StoreSpec{
		Via:  []string{"nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", m.leader), "--"},
		Dial: m.dial,
	}.Start(t)
	m.writeFile(t, "/etc/fieldcol/backup/store-ca.pem", string(harness.ReadFile(t, store.CAFile)), 0o644)
	m.writeFile(t, "/etc/fieldcol/backup/restic-password", "e2e-systemd-restic-password\n", 0o600)
	m.writeFile(t, "/etc/fieldcol/backup/s3-credentials",
		fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", store.AccessKey, store.SecretKey), 0o600)
	m.sh(t, fmt.Sprintf(`cat >>/etc/default/fieldcol <<EOF
FIELDCOL_BACKUP_REPOSITORY=s3:%s/fieldcol-backups/fieldcol-pi
FIELDCOL_BACKUP_PASSWORD_FILE=/etc/fieldcol/backup/restic-password
FIELDCOL_BACKUP_S3_CREDENTIALS_FILE=/etc/fieldcol/backup/s3-credentials
FIELDCOL_BACKUP_CACERT=/etc/fieldcol/backup/store-ca.pem
FIELDCOL_BACKUP_HOST=fieldcol-pi
EOF`, store.URL))
	m.run(t, "fieldcol-backup", "init")

	// Every 10 s instead of every 15 minutes, no random delay.
	m.writeFile(t, "/etc/systemd/system/fieldcol-backup.timer.d/50-e2e.conf",
		"[Timer]\nOnCalendar=\nOnCalendar=*:*:0/10\nRandomizedDelaySec=0\n", 0o644)
	m.run(t, "systemctl", "daemon-reload")
	since := monotonicMicros(t)
	sinceWall := time.Now().Unix()
	m.run(t, "systemctl", "enable", "--now", "fieldcol-backup.timer")
	harness.WaitUntil(t, s.d(2*time.Minute), 500*time.Millisecond, func() (bool, string) {
		exit := m.showInt(t, "fieldcol-backup.service", "ExecMainExitTimestampMonotonic")
		result := m.show(t, "fieldcol-backup.service", "Result")
		return exit > since && result == "success", fmt.Sprintf("fieldcol-backup.service: Result=%s, exited at %d (timer enabled at %d)", result, exit, since)
	})
	trigger := m.show(t, "fieldcol-backup.timer", "LastTriggerUSec") // the machine's zone is UTC
	triggered, err := time.Parse("Mon 2006-01-02 15:04:05 MST", trigger)
	require.NoError(t, err, "fieldcol-backup.timer LastTriggerUSec=%q", trigger)
	assert.GreaterOrEqual(t, triggered.Unix(), sinceWall, "the service ran, but not from the timer")
	status := m.run(t, "fieldcol-backup", "status")
	assert.Contains(t, status, `"result":"success"`)
	assert.Contains(t, status, `"repository":"s3:`+store.URL)
	t.Logf("fieldcol-backup.timer fired; fieldcol-backup status: %s", strings.TrimSpace(status))
	m.run(t, "systemctl", "disable", "--now", "fieldcol-backup.timer")

	// The last backup is of the stopped edge, so its latch file is the one on disk.
	m.run(t, "systemctl", "stop", "fieldcol.service")
	ovenLatched := latchedInFile(t, m)
	require.NotEmpty(t, ovenLatched)
	configSum := m.run(t, "sha256sum", "/etc/fieldcol/config.yaml")
	m.run(t, "systemctl", "start", "fieldcol-backup.service")
	require.Equal(t, "success", m.show(t, "fieldcol-backup.service", "Result"))

	// The SD card is lost: state and config are gone.
	m.run(t, "rm", "-rf", "/var/lib/fieldcol/controlloop", "/etc/fieldcol/config.yaml")
	// fieldcol-restore's own start counts against StartLimitBurst like any other.
	m.run(t, "systemctl", "reset-failed", "fieldcol.service")
	cursor := m.cursor(t)
	out := m.run(t, "fieldcol-restore")
	t.Logf("fieldcol-restore:\n%s", out)
	assert.Equal(t, configSum, m.run(t, "sha256sum", "/etc/fieldcol/config.yaml"), "the restored config")
	active, _ := m.try("systemctl", "is-active", "fieldcol.service")
	require.Equal(t, "active", strings.TrimSpace(active), "%s", m.journal(t, cursor, "fieldcol.service"))
	harness.WaitUntil(t, s.start, 100*time.Millisecond, func() (bool, string) { return m.healthy(), "health check not answering" })
	oven := m.loop(t, "oven")
	assert.Equal(t, true, oven["dry_run"], "restored edge not in dry run: %v", oven)
	assert.Equal(t, ovenLatched, latched(oven), "the oven's latches after the restore")
	assert.Equal(t, true, m.loop(t, "conveyor")["dry_run"])
	assert.Contains(t, m.show(t, "fieldcol.service", "ExecStart"), "/etc/fieldcol/dry-run.yaml", "the drop-in's command line")
}

// latchedInFile reads the oven's latched alarms through the API of a short run... of the
// file itself: the latch file names each latched alarm.
func latchedInFile(t *testing.T, m *machine) []string {
	t.Helper()
	body := m.run(t, "cat", latchFile)
	var names []string
	for _, a := range []string{"high_limit", "sensor_fault"} {
		if strings.Contains(body, `"`+a+`"`) {
			names = append(names, a)
		}
	}
	return names
}

// removeAndPurge: dpkg -r stops the service and keeps state, config and secrets; dpkg
// --purge removes them and leaves no unit behind, failed or enabled.
func removeAndPurge(t *testing.T, m *machine) {
	exists := func(p string) bool { // a dangling link counts
		_, err := m.try("sh", "-c", `[ -e "$0" ] || [ -L "$0" ]`, p)
		return err == nil
	}
	out := m.run(t, "dpkg", "-r", "fieldcol-edge")
	t.Logf("dpkg -r:\n%s", out)
	active, _ := m.try("systemctl", "is-active", "fieldcol.service")
	assert.NotEqual(t, "active", strings.TrimSpace(active), "the removed package's service runs on")
	assert.False(t, exists("/usr/bin/fieldcol-edge"))
	for _, p := range []string{latchFile, "/etc/fieldcol/config.yaml", "/etc/fieldcol/fieldcol-edge.env", "/etc/default/fieldcol"} {
		assert.True(t, exists(p), "dpkg -r removed %s", p)
	}
	noFailedUnits(t, m)

	out = m.run(t, "dpkg", "--purge", "fieldcol-edge")
	t.Logf("dpkg --purge:\n%s", out)
	for _, p := range []string{"/var/lib/fieldcol", "/etc/fieldcol/config.yaml", "/etc/fieldcol/fieldcol-edge.env",
		"/etc/fieldcol/dry-run.yaml", "/etc/default/fieldcol", "/etc/systemd/system/fieldcol.service.d",
		"/etc/systemd/system/multi-user.target.wants/fieldcol.service", "/etc/systemd/system/fieldcol-edge.service",
		"/etc/systemd/system/timers.target.wants/fieldcol-backup.timer"} {
		assert.False(t, exists(p), "%s is left after dpkg --purge", p)
	}
	left := m.sh(t, `find /etc/systemd/system -name 'fieldcol*'; ls -A /etc/fieldcol 2>/dev/null || true`)
	t.Logf("left after purge (the operator's backup credentials stay): %s", left)
	m.run(t, "systemctl", "daemon-reload")
	noFailedUnits(t, m)
}
