package drills

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// backupHost is the host name the machine's snapshots are made under.
const backupHost = "pi-e2e-0042"

// backupMachine is the files of one edge machine under a temporary root: its config, the
// unit's environment file, /etc/default/fieldcol, the latch file, the backup secrets.
type backupMachine struct {
	store                                *harness.S3Store
	root                                 string
	config, edgeEnv, settings, latchFile string
	shippedRules                         string // the rules the device was shipped with
	passwordFile, credsFile              string
	stateDir                             string
	env                                  []string // the restic environment, for the test's own restic calls
}

// writeFile writes path with content and mode, creating its directory.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o750))
	require.NoError(t, os.WriteFile(path, []byte(content), mode))
	require.NoError(t, os.Chmod(path, mode))
}

// newBackupMachine lays out a machine as docs/disaster-recovery.md installs it, with the
// shipped edge config and the backup's secrets for store; writeSettings completes it once
// the edge runs.
func newBackupMachine(t *testing.T, store *harness.S3Store) *backupMachine {
	t.Helper()
	root := t.TempDir()
	m := &backupMachine{
		store:        store,
		root:         root,
		config:       filepath.Join(root, "etc/fieldcol/config.yaml"),
		edgeEnv:      filepath.Join(root, "etc/fieldcol/fieldcol-edge.env"),
		settings:     filepath.Join(root, "etc/default/fieldcol"),
		latchFile:    filepath.Join(root, "var/lib/fieldcol/controlloop/latches.json"),
		passwordFile: filepath.Join(root, "etc/fieldcol/backup/restic-password"),
		credsFile:    filepath.Join(root, "etc/fieldcol/backup/s3-credentials"),
		stateDir:     filepath.Join(root, "var/lib/fieldcol/backup"),
		shippedRules: filepath.Join(root, "usr/share/fieldcol/alerts/slo-rules.yaml"),
	}
	rules, err := os.ReadFile(harness.Shipped("alerts/slo/slo-rules.yaml"))
	require.NoError(t, err)
	writeFile(t, m.shippedRules, string(rules), 0o644)
	cfg, err := os.ReadFile(harness.Shipped("distributions/edge/config.yaml"))
	require.NoError(t, err)
	writeFile(t, m.config, string(cfg), 0o644)
	writeFile(t, m.edgeEnv, "FIELDCOL_API_TOKEN="+harness.APIToken+"\n", 0o600)
	writeFile(t, m.passwordFile, "correct horse battery staple e2e\n", 0o600)
	writeFile(t, m.credsFile, fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", store.AccessKey, store.SecretKey), 0o600)
	require.NoError(t, os.MkdirAll(filepath.Dir(m.latchFile), 0o750))
	m.env = []string{
		"RESTIC_REPOSITORY=" + m.repository(), "RESTIC_PASSWORD_FILE=" + m.passwordFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + m.credsFile, "RESTIC_CACHE_DIR=" + filepath.Join(root, "var/cache/fieldcol-backup"),
	}
	return m
}

// repository is the machine's restic repository in the S3 store.
func (m *backupMachine) repository() string {
	return "s3:" + m.store.URL + "/fieldcol-backups/" + backupHost
}

// writeSettings writes /etc/default/fieldcol: the backup's settings, with otlpHTTP as the
// edge that receives its results.
func (m *backupMachine) writeSettings(t *testing.T, otlpHTTP string) {
	t.Helper()
	root := m.root
	writeFile(t, m.settings, strings.Join([]string{
		"FIELDCOL_BACKUP_REPOSITORY=" + m.repository(),
		"FIELDCOL_BACKUP_PASSWORD_FILE=" + m.passwordFile,
		"FIELDCOL_BACKUP_S3_CREDENTIALS_FILE=" + m.credsFile,
		"FIELDCOL_BACKUP_CACERT=" + m.store.CAFile,
		"FIELDCOL_BACKUP_HOST=" + backupHost,
		fmt.Sprintf("FIELDCOL_BACKUP_PATHS=%q", strings.Join([]string{
			filepath.Join(root, "etc/fieldcol"), m.settings, filepath.Dir(m.latchFile), filepath.Join(root, "usr/share/fieldcol"),
		}, " ")),
		"FIELDCOL_BACKUP_EXCLUDES=" + filepath.Join(root, "var/lib/fieldcol/diskqueue"),
		"FIELDCOL_BACKUP_STATE_DIR=" + m.stateDir,
		"FIELDCOL_BACKUP_CACHE_DIR=" + filepath.Join(root, "var/cache/fieldcol-backup"),
		"FIELDCOL_BACKUP_OTLP_ENDPOINT=http://" + otlpHTTP,
		"FIELDCOL_BACKUP_RELEASE_FILE=" + filepath.Join(filepath.Dir(m.latchFile), "release.json"),
		"FIELDCOL_CONFIG=" + m.config,
		"FIELDCOL_EDGE_ENV=" + m.edgeEnv,
		"FIELDCOL_EDGE_BIN=" + harness.Binary(t, "fieldcol-edge"),
		"FIELDCOL_DRY_RUN_OVERLAY=" + filepath.Join(root, "etc/fieldcol/dry-run.yaml"),
		"FIELDCOL_RESTORE_STAGING=" + t.TempDir(),
	}, "\n")+"\n", 0o644)
}

// script runs one of deploy/backup's scripts with the settings file and returns its
// combined output and exit error.
func (m *backupMachine) script(t *testing.T, settings, name string, args ...string) (string, time.Duration, error) {
	t.Helper()
	cmd := exec.Command(harness.Shipped("deploy/backup/"+name), args...)
	cmd.Env = append(os.Environ(), "FIELDCOL_BACKUP_ENV="+settings)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	return out.String(), time.Since(start), err
}

// resticSnapshot is a snapshot as `restic snapshots --json` lists it.
type resticSnapshot struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags"`
}

// restic runs restic against the machine's repository as the test's own check.
func (m *backupMachine) restic(t *testing.T, caFile string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("restic", append([]string{"--cacert", caFile}, args...)...)
	cmd.Env = append(os.Environ(), m.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "restic %v: %s", args, stderr.String())
	return out
}

// snapshots lists the repository's snapshots.
func (m *backupMachine) snapshots(t *testing.T, caFile string) []resticSnapshot {
	t.Helper()
	var snaps []resticSnapshot
	require.NoError(t, json.Unmarshal(m.restic(t, caFile, "snapshots", "--json"), &snaps))
	return snaps
}

// The disaster-recovery drill end to end, against a real S3 server (versitygw over TLS) and
// the real restic: an edge trips a latched alarm; fieldcol-backup backs up its config and
// state and reports the result into the edge's pipeline; a backup with wrong S3 keys fails
// loudly and is counted; the machine's files are broken and deleted; fieldcol-restore
// restores them byte for byte, validates the config and starts the edge in dry run with the
// latched alarm back and every output safe; auto is refused until CLEAR_DRY_RUN. A snapshot
// whose config does not validate is not restored over the machine. Retention forgets
// snapshots older than the window (restic's --time makes one 40 days old).
func TestBackupRestoreIntoDryRun(t *testing.T) {
	testproc.LookPath(t, "restic", "Debian package restic")
	store := harness.StartS3Store(t)

	// 1. A running edge whose oven has a latched sensor_fault.
	m := newBackupMachine(t, store)
	edgeEnv := []string{"FIELDCOL_LATCH_FILE=" + m.latchFile, "FIELDCOL_HW_INTERVAL=1s"}
	edge := harness.StartCollector(t, harness.Binary(t, "fieldcol-edge"), []string{m.config}, edgeEnv...)
	m.writeSettings(t, edge.OTLPHTTP)
	status, answer := edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","kind":"nan"}`)
	require.Equal(t, http.StatusOK, status, "%v", answer)
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(m.latchFile)
		return err == nil && strings.Contains(string(b), "sensor_fault")
	}, 10*time.Second, 20*time.Millisecond, "the latched alarm was not persisted")
	status, _ = edge.Call(t, http.MethodPost, "/api/v1/sim/faults", harness.APIToken, `{"device":"oven_temp","clear":true}`)
	require.Equal(t, http.StatusOK, status)

	// 2. Backups: init once, then one backup whose result reaches the edge's pipeline.
	out, _, err := m.script(t, m.settings, "fieldcol-backup", "init")
	require.NoError(t, err, out)
	out, took, err := m.script(t, m.settings, "fieldcol-backup", "backup")
	require.NoError(t, err, out)
	t.Logf("backup of the default config and state took %s: %s", took, strings.TrimSpace(out))
	metricsURL := "http://" + edge.Metrics + "/metrics"
	require.Eventually(t, func() bool {
		v, ok := harness.MetricsSum(metricsURL, "backup_runs_total", `kind="backup"`, `result="success"`, `device_id=`)
		return ok && v == 1
	}, 20*time.Second, 100*time.Millisecond, "the backup's result did not reach the pipeline")
	last, _ := harness.MetricsSum(metricsURL, "backup_last_success_seconds", `kind="backup"`)
	assert.InDelta(t, float64(time.Now().Unix()), last, 60, "last success is now")
	size, ok := harness.MetricsSum(metricsURL, "backup_size_bytes", `kind="backup"`)
	assert.True(t, ok)
	assert.Positive(t, size)
	added, ok := harness.MetricsSum(metricsURL, "backup_added_bytes", `kind="backup"`)
	assert.True(t, ok && added > 0, "backup_added_bytes %v", added)
	dur, ok := harness.MetricsSum(metricsURL, "backup_duration_seconds", `kind="backup"`, `result="success"`)
	assert.True(t, ok && dur > 0 && dur < took.Seconds()+1, "backup_duration_seconds %v", dur)
	t.Logf("snapshot of the default config and state: %.0f bytes of files, %.0f bytes added to the repository", size, added)
	snaps := m.snapshots(t, store.CAFile)
	require.Len(t, snaps, 1)
	good := snaps[0].ShortID
	// The snapshot records the hash of the configuration the edge runs (its release file,
	// the config_hash of controlloop_release_info).
	var release struct {
		ConfigHash string `json:"config_hash"`
	}
	require.NoError(t, json.Unmarshal(harness.ReadFile(t, filepath.Join(filepath.Dir(m.latchFile), "release.json")), &release))
	require.Regexp(t, `^[0-9a-f]{12}$`, release.ConfigHash)
	assert.ElementsMatch(t, []string{"fieldcol", "config_hash:" + release.ConfigHash}, snaps[0].Tags)
	if info, ok := harness.MetricsSum(metricsURL, "controlloop_release_info", `config_hash="`+release.ConfigHash+`"`); assert.True(t, ok, "controlloop_release_info carries the hash the backup recorded") {
		assert.EqualValues(t, 1, info)
	}
	listing := string(m.restic(t, store.CAFile, "ls", good))
	assert.Contains(t, listing, m.config)
	assert.Contains(t, listing, m.latchFile)
	assert.NotContains(t, listing, "restic-password", "the repository's own secrets are not in it")
	assert.NotContains(t, listing, "s3-credentials")

	// 3. Wrong S3 keys: the backup fails loudly, is counted, and the status file says why.
	badSettings := filepath.Join(t.TempDir(), "fieldcol")
	badCreds := filepath.Join(t.TempDir(), "s3-credentials")
	writeFile(t, badCreds, fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = wrong\n", store.AccessKey), 0o600)
	writeFile(t, badSettings, string(harness.ReadFile(t, m.settings))+"FIELDCOL_BACKUP_S3_CREDENTIALS_FILE="+badCreds+"\n", 0o644)
	out, _, err = m.script(t, badSettings, "fieldcol-backup", "backup")
	require.Error(t, err, "a backup with wrong credentials must fail: %s", out)
	assert.Contains(t, out, "backup to s3:"+store.URL)
	assert.Contains(t, out, "signature", "restic's reason is shown")
	require.Eventually(t, func() bool {
		v, ok := harness.MetricsSum(metricsURL, "backup_runs_total", `kind="backup"`, `result="failure"`)
		return ok && v == 1
	}, 20*time.Second, 100*time.Millisecond, "the failed backup is not counted")
	statusOut, _, err := m.script(t, m.settings, "fieldcol-backup", "status")
	require.NoError(t, err, statusOut)
	var st struct {
		Result          string `json:"result"`
		Error           string `json:"error"`
		LastSuccessUnix int64  `json:"last_success_unix"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(statusOut, "\n", 2)[0]), &st), statusOut)
	assert.Equal(t, "failure", st.Result)
	assert.NotEmpty(t, st.Error)
	assert.InDelta(t, float64(time.Now().Unix()), float64(st.LastSuccessUnix), 60, "the last success is kept across a failure")
	require.NoError(t, os.Chmod(badCreds, 0o644))
	out, _, err = m.script(t, badSettings, "fieldcol-backup", "backup")
	require.Error(t, err)
	assert.Contains(t, out, "readable by group or others", "a secret other users can read is refused")
	edge.Stop(t)

	// 4. The Pi is lost: the machine's files are broken or gone. What the operator brings
	// to the replacement is the settings file and the two secrets from the fleet's store.
	want := map[string][]byte{}
	for _, p := range []string{m.config, m.edgeEnv, m.settings, m.latchFile, m.shippedRules} {
		want[p] = harness.ReadFile(t, p)
	}
	bootstrap := filepath.Join(t.TempDir(), "fieldcol")
	writeFile(t, bootstrap, string(want[m.settings]), 0o644)
	writeFile(t, m.config, "receivers: {otlp: [broken\n", 0o644)
	require.NoError(t, os.Remove(m.edgeEnv))
	require.NoError(t, os.Remove(m.settings))
	require.NoError(t, os.RemoveAll(filepath.Dir(m.latchFile)))
	require.NoError(t, os.RemoveAll(filepath.Join(m.root, "usr")))

	// 5. fieldcol-restore puts the files back, validates and execs the edge in dry run.
	restoreStart := time.Now()
	// The restored edge listens where the settings send the backup's results.
	restored := harness.CollectorSpec{
		Bin: harness.Shipped("deploy/backup/fieldcol-restore"),
		Env: append(edgeEnv, "FIELDCOL_BACKUP_ENV="+bootstrap, "FIELDCOL_RESTORE_START=exec"),
		At:  harness.Listeners{OTLPHTTP: edge.OTLPHTTP},
	}.Start(t)
	rto := time.Since(restoreStart)
	t.Logf("restore: snapshot fetched, config validated, edge healthy in dry run after %s", rto)
	for p, b := range want {
		if p == m.latchFile {
			continue // the restored edge has already written its start into it
		}
		assert.Equal(t, string(b), string(harness.ReadFile(t, p)), "%s is not restored byte for byte", p)
	}
	// The latch file: the latches and the operator's state are the backup's; the edge that
	// fieldcol-restore started has counted one more start (unclean: the backup was taken
	// from a running edge) and marked itself running.
	var before, after struct {
		Running bool                         `json:"running"`
		Starts  struct{ Clean, Unclean int } `json:"starts"`
		Loops   json.RawMessage              `json:"loops"`
	}
	require.NoError(t, json.Unmarshal(want[m.latchFile], &before))
	require.NoError(t, json.Unmarshal(harness.ReadFile(t, m.latchFile), &after))
	assert.JSONEq(t, string(before.Loops), string(after.Loops), "the latches and the operator's state are restored")
	assert.True(t, after.Running)
	assert.Equal(t, before.Starts.Clean, after.Starts.Clean)
	assert.Equal(t, before.Starts.Unclean+1, after.Starts.Unclean, "the restored start counts as unclean")
	_, oven := restored.Call(t, http.MethodGet, "/api/v1/loops/oven", harness.APIToken, "")
	assert.Equal(t, true, oven["dry_run"], "%v", oven)
	assert.Equal(t, "tripped", oven["state"], "the backup's latched alarm is back")
	latched := []string{}
	alarms, _ := oven["alarms"].([]any)
	for _, a := range alarms {
		if a, ok := a.(map[string]any); ok && a["latched"] == true {
			latched = append(latched, fmt.Sprint(a["name"]))
		}
	}
	assert.Equal(t, []string{"sensor_fault"}, latched, "the backup's latched alarms, and only they, are latched")
	assert.Equal(t, true, oven["safe_state"])
	require.Eventually(t, func() bool {
		_, conv := restored.Call(t, http.MethodGet, "/api/v1/loops/conveyor", harness.APIToken, "")
		return conv["state"] == "dry_run" && conv["safe_state"] == true && conv["output"] == 0.0
	}, 10*time.Second, 50*time.Millisecond, "the conveyor computes in dry run with its outputs safe")
	restoredMetrics := "http://" + restored.Metrics + "/metrics"
	require.Eventually(t, func() bool {
		v, _ := harness.MetricsSum(restoredMetrics, "controlloop_dry_run_writes_total", `actuator="motor_speed"`)
		return v > 0
	}, 20*time.Second, 100*time.Millisecond, "held-back writes are counted")
	assert.Contains(t, restored.Proc.Log(), "dry run: actuator not written", "held-back writes are logged with their value")
	for _, q := range []struct{ name, match string }{
		{"controlloop_safe_state", `loop="oven"`}, {"controlloop_safe_state", `loop="conveyor"`},
		{"controlloop_dry_run", `loop="conveyor"`},
	} {
		v, ok := harness.MetricsSum(restoredMetrics, q.name, q.match)
		assert.True(t, ok && v == 1, "%s{%s} = %v", q.name, q.match, v)
	}
	for _, actuator := range []string{"heater_ssr", "motor_speed", "motor_enable"} {
		v, ok := harness.MetricsSum(restoredMetrics, "controlloop_output_ratio", `actuator="`+actuator+`"`)
		assert.True(t, ok && v == 0, "%s output %v: outputs stay safe in dry run", actuator, v)
	}

	// 6. Commissioning through the authenticated API.
	status, answer = restored.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"SET_MODE","loop":"conveyor","mode":"auto"}`)
	assert.Equal(t, http.StatusConflict, status, "auto is refused in dry run: %v", answer)
	status, _ = restored.Call(t, http.MethodPost, "/api/v1/commands", "", `{"command":"CLEAR_DRY_RUN"}`)
	assert.Equal(t, http.StatusUnauthorized, status)
	status, answer = restored.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"CLEAR_DRY_RUN"}`)
	require.Equal(t, http.StatusOK, status, "%v", answer)
	status, answer = restored.Call(t, http.MethodPost, "/api/v1/commands", harness.APIToken, `{"command":"SET_MODE","loop":"conveyor","mode":"auto"}`)
	assert.Equal(t, http.StatusOK, status, "after CLEAR_DRY_RUN auto is accepted: %v", answer)
	restored.Stop(t)

	// 7. A snapshot whose config does not validate is not restored over the machine; an
	// older one is, by id.
	writeFile(t, m.config, "receivers: {otlp: [broken\n", 0o644)
	out, took, err = m.script(t, m.settings, "fieldcol-backup", "backup")
	require.NoError(t, err, out)
	t.Logf("incremental backup (one file changed) took %s: %s", took, strings.TrimSpace(out))
	out, _, err = m.script(t, m.settings, "fieldcol-restore", "--start", "none")
	require.Error(t, err, out)
	assert.Contains(t, out, "does not validate")
	assert.Equal(t, "receivers: {otlp: [broken\n", string(harness.ReadFile(t, m.config)))
	out, took, err = m.script(t, m.settings, "fieldcol-restore", "--start", "none", "--snapshot", good)
	require.NoError(t, err, out)
	assert.Equal(t, string(want[m.config]), string(harness.ReadFile(t, m.config)))
	t.Logf("restore of snapshot %s without starting the edge took %s", good, took)

	// 8. Retention: a snapshot 40 days old is forgotten by the nightly prune, the recent ones stay.
	old := time.Now().Add(-40 * 24 * time.Hour).UTC().Format("2006-01-02 15:04:05")
	m.restic(t, store.CAFile, "backup", "--host", backupHost, "--tag", "fieldcol", "--time", old, filepath.Join(m.root, "etc/fieldcol"))
	require.Len(t, m.snapshots(t, store.CAFile), 3)
	out, _, err = m.script(t, m.settings, "fieldcol-backup", "prune")
	require.NoError(t, err, out)
	snaps = m.snapshots(t, store.CAFile)
	require.Len(t, snaps, 2, "only the 40-day-old snapshot is forgotten")
	for _, s := range snaps {
		assert.WithinDuration(t, time.Now(), s.Time, 10*time.Minute, "snapshot %s", s.ShortID)
	}
	m.restic(t, store.CAFile, "check")
}
