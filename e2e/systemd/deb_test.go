package systemd

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// The shipped config's control loops: each logs its real-time result once per start.
var loops = []string{"oven", "conveyor"}

// TestDebUnderSystemd proves the amd64 .deb in a booted Debian with systemd as PID 1.
func TestDebUnderSystemd(t *testing.T) {
	m := boot(t, "amd64", 3*time.Minute)
	proveDeb(t, m, scale{start: time.Minute, factor: 1})
}

// TestDebUnderSystemdArm64 runs the same proofs on the arm64 .deb in an arm64 root, every
// aarch64 program (systemd too) under qemu-user-static through binfmt_misc: make soak only
// (FIELDCOL_SOAK=1), since emulation makes it several times slower.
func TestDebUnderSystemdArm64(t *testing.T) {
	if os.Getenv("FIELDCOL_SOAK") == "" {
		t.Skip("the arm64 .deb under qemu-user-static runs in make soak (FIELDCOL_SOAK=1)")
	}
	testproc.LookPath(t, "qemu-aarch64-static", "Debian package qemu-user-static")
	m := boot(t, "arm64", 10*time.Minute)
	proveDeb(t, m, scale{start: 3 * time.Minute, factor: 6})
}

// scale stretches the waits of the proofs for an emulated machine.
type scale struct {
	start  time.Duration // how long a start of the edge may take
	factor int           // multiplies the other waits
}

func (s scale) d(d time.Duration) time.Duration { return d * time.Duration(s.factor) }

// debFor returns the path and version of the .deb of arch that the last scripts/dist.sh
// run built (dist/SHA256SUMS lists them; older versions may still lie in dist/).
func debFor(t *testing.T, arch string) (path, version string) {
	t.Helper()
	sums, err := os.ReadFile(filepath.Join(harness.Root(), "dist", "SHA256SUMS"))
	re := regexp.MustCompile(`(?m)  (fieldcol-edge_(\S+)-1_` + regexp.QuoteMeta(arch) + `\.deb)$`)
	var mm []string
	if err == nil {
		mm = re.FindStringSubmatch(string(sums))
	}
	if mm == nil {
		msg := fmt.Sprintf("no fieldcol-edge .deb for %s in dist/SHA256SUMS (%v): make dist-test builds the amd64 one, make soak the arm64 one too", arch, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return filepath.Join(harness.Root(), "dist", mm[1]), mm[2]
}

// proveDeb runs the proofs in order on a booted machine; each is a subtest named after what
// it proves, and the first that fails stops the rest (they build on each other's state).
func proveDeb(t *testing.T, m *machine, s scale) {
	deb, version := debFor(t, m.arch)
	step := func(name string, f func(t *testing.T)) {
		start := time.Now()
		ok := t.Run(name, f)
		t.Logf("%s: %s in %s", map[bool]string{true: "PASS", false: "FAIL"}[ok], name, time.Since(start).Round(100*time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}
	step("boots_with_no_failed_unit", func(t *testing.T) { noFailedUnits(t, m) })
	step("dpkg_i_installs_the_unit_disabled", func(t *testing.T) { install(t, m, deb, version) })
	step("active_only_after_READY=1", func(t *testing.T) { readiness(t, m, s) })
	step("realtime_under_the_shipped_hardening", func(t *testing.T) { realtime(t, m) })
	step("journal_holds_the_API_audit_lines", func(t *testing.T) { audit(t, m) })
	step("latch_and_retained_mode_before_the_faults", func(t *testing.T) { latchSomething(t, m, s) })
	step("Restart=always_after_SIGKILL_with_safe_outputs", func(t *testing.T) {
		restartAfter(t, m, s, "KILL", "signal", s.d(30*time.Second))
	})
	step("watchdog_restarts_after_SIGSTOP", func(t *testing.T) {
		// WatchdogSec=10s, then SIGABRT; systemd sends SIGCONT with it, so the Go runtime
		// dumps its stacks and exits; RestartSec=2s.
		restartAfter(t, m, s, "STOP", "watchdog", 10*time.Second+s.d(40*time.Second))
	})
	step("hardening_confines_writes_and_devices", func(t *testing.T) { hardening(t, m) })
	step("security_score_equals_the_offline_check", func(t *testing.T) { securityScore(t, m) })
	step("backup_timer_fires_and_restore_starts_dry_run", func(t *testing.T) { backupAndRestore(t, m, s) })
	step("dpkg_r_keeps_state_purge_removes_it", func(t *testing.T) { removeAndPurge(t, m) })
	step("no_failed_unit_at_the_end", func(t *testing.T) { noFailedUnits(t, m) })
}

// noFailedUnits asserts that systemd lists no failed unit. Under qemu-user, units that set
// up credentials (systemd-sysctl, systemd-sysusers, the two tmpfiles setups) fail at boot
// with status 243/CREDENTIALS, "Failed to set up credentials: Invalid argument": qemu does
// not translate the mount system calls that systemd mounts credentials with. fieldcol's
// units use no credentials; those failures are logged, not counted.
func noFailedUnits(t *testing.T, m *machine) {
	out := m.run(t, "systemctl", "list-units", "--all", "--state=failed", "--no-legend", "--plain")
	var failed, emulation []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		unit := f[0]
		if m.emulated() && m.show(t, unit, "ExecMainStatus") == "243" {
			emulation = append(emulation, unit)
			continue
		}
		failed = append(failed, unit)
	}
	assert.Empty(t, failed, "failed units:\n%s", out)
	if len(emulation) > 0 {
		t.Logf("failed under qemu-user only (243/CREDENTIALS, not fieldcol's): %s", strings.Join(emulation, " "))
		return
	}
	state, _ := m.try("systemctl", "is-system-running")
	assert.Equal(t, "running", strings.TrimSpace(state))
}

// install runs dpkg -i inside; the package must leave the unit disabled until the operator
// has edited the config, and the unit must verify in the booted system.
func install(t *testing.T, m *machine, deb, version string) {
	require.NoError(t, os.Link(deb, filepath.Join(m.share, filepath.Base(deb))))
	out := m.run(t, "dpkg", "-i", sharedDir+"/"+filepath.Base(deb))
	t.Logf("dpkg -i:\n%s", out)
	assert.Equal(t, "fieldcol-edge version "+version, strings.TrimSpace(m.run(t, "fieldcol-edge", "--version")))
	enabled, _ := m.try("systemctl", "is-enabled", "fieldcol.service")
	assert.Equal(t, "disabled", strings.TrimSpace(enabled), "the package must not enable the unit before the config is edited")
	active, _ := m.try("systemctl", "is-active", "fieldcol.service")
	assert.Equal(t, "inactive", strings.TrimSpace(active))
	verify, err := m.try("systemd-analyze", "verify", "--man=no", "fieldcol.service", "fieldcol-backup.service", "fieldcol-backup.timer")
	assert.NoError(t, err, "systemd-analyze verify: %s", verify)
	assert.NotContains(t, verify, "fieldcol", "systemd-analyze verify warns about the units")
	// What docs/install-pi.md tells the operator to set: real-time loops.
	m.sh(t, `echo FIELDCOL_REALTIME=true >>/etc/default/fieldcol`)
	m.run(t, "systemctl", "enable", "fieldcol.service")
}

// readiness starts the unit and freezes its process (SIGSTOP) before it can send READY=1:
// systemd must keep the unit activating for as long as the process is stopped, and make
// it active only after SIGCONT, once the process has notified it.
func readiness(t *testing.T, m *machine, s scale) {
	const held = 3 * time.Second
	for try := 1; ; try++ {
		cursor := m.cursor(t)
		// Poll MainPID as fast as the shell can: the process needs far longer than one
		// poll to get from exec to READY=1.
		pid := strings.TrimSpace(m.sh(t, `systemctl start --no-block fieldcol.service
pid=0
while [ "$pid" = 0 ]; do pid=$(systemctl show -p MainPID --value fieldcol.service); done
kill -STOP "$pid"
echo "$pid"`))
		if strings.Contains(m.journal(t, cursor, "fieldcol.service"), "notified systemd: ready") {
			// Too late: it was ready before it was stopped. Start again.
			m.kill(t, "CONT", pid)
			m.run(t, "systemctl", "stop", "fieldcol.service")
			m.run(t, "systemctl", "reset-failed", "fieldcol.service")
			require.Less(t, try, 5, "the edge was ready before it could be stopped %d times", try)
			continue
		}
		for end := time.Now().Add(held); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			st := m.run(t, "systemctl", "show", "-p", "ActiveState", "-p", "SubState", "fieldcol.service")
			require.Equal(t, "ActiveState=activating\nSubState=start\n", st, "the unit left activating while its process was stopped before READY=1")
		}
		status, _ := m.try("systemctl", "status", "--no-pager", "fieldcol.service")
		assert.Contains(t, status, "Active: activating (start)")
		cont := monotonicMicros(t)
		m.kill(t, "CONT", pid)
		harness.WaitUntil(t, s.start, 50*time.Millisecond, func() (bool, string) {
			st, _ := m.try("systemctl", "is-active", "fieldcol.service")
			return strings.TrimSpace(st) == "active", "fieldcol.service is " + st
		})
		active := m.showInt(t, "fieldcol.service", "ActiveEnterTimestampMonotonic")
		assert.Greater(t, active, cont, "active before the stopped process was resumed")
		log := m.journal(t, cursor, "fieldcol.service")
		assert.Contains(t, log, "notified systemd: ready")
		status, _ = m.try("systemctl", "status", "--no-pager", "fieldcol.service")
		assert.Contains(t, status, "Active: active (running)")
		assert.Regexp(t, `Status: "control loops running`, status, "systemctl status shows the service's notify status")
		t.Logf("held in activating (start) for %s while SIGSTOPped before READY=1 (try %d); active %.0f ms after SIGCONT",
			held, try, float64(active-cont)/1000)
		t.Logf("systemctl status fieldcol:\n%s", firstLines(status, 12))
		harness.WaitUntil(t, s.start, 100*time.Millisecond, func() (bool, string) { return m.healthy(), "health check not answering" })
		return
	}
}

// realtime checks what the loops logged about SCHED_FIFO and mlockall, and what the kernel
// says of the process: its threads' policy, its limits and its locked memory.
//
// LimitMEMLOCK=infinity needs a PID 1 that may raise hard limits (CAP_SYS_RESOURCE). Where
// the test itself lacks that capability (this VM's sandbox gives root an 8 MiB hard
// RLIMIT_MEMLOCK and no CAP_SYS_RESOURCE), the container's systemd cannot have it either:
// then mlockall must fail on that limit (ENOMEM), never with the filter's EPERM, and the
// log says that the locked-memory half is not proven here.
func realtime(t *testing.T, m *machine) {
	invocation := m.show(t, "fieldcol.service", "InvocationID")
	log := m.run(t, "journalctl", "--no-pager", "-o", "cat", "_SYSTEMD_INVOCATION_ID="+invocation)
	assert.NotContains(t, grepLines(log, "real-time", "SCHED_FIFO", "mlockall"), "operation not permitted",
		"an EPERM (the system-call filter's SystemCallErrorNumber, or a missing capability)")
	pid := m.show(t, "fieldcol.service", "MainPID")
	status := m.run(t, "cat", "/proc/"+pid+"/status")
	// nspawn's own filters are on every process inside; the unit's come on top of them.
	filters, nspawnFilters := seccompFilters(t, status), seccompFilters(t, m.run(t, "cat", "/proc/1/status"))
	if m.emulated() {
		// qemu-user does not let its guest install seccomp filters (they would be the
		// guest's architecture, applied to qemu's own host system calls).
		assert.Equal(t, nspawnFilters, filters)
		t.Logf("NOT PROVEN UNDER EMULATION: the unit's SystemCallFilter= (qemu-user runs the service with nspawn's %d filters only)", filters)
	} else {
		assert.Greater(t, filters, nspawnFilters, "the unit's system-call filter is not in force")
	}
	policies := m.sh(t, `grep -h '^policy' /proc/`+pid+`/task/*/sched`)
	fifo := 0
	for _, l := range strings.Split(policies, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[2] == "1" { // SCHED_FIFO
			fifo++
		}
	}
	assert.GreaterOrEqual(t, fifo, len(loops), "threads with SCHED_FIFO:\n%s", policies)
	limits := m.run(t, "cat", "/proc/"+pid+"/limits")
	assert.Regexp(t, `Max realtime priority\s+99\s+99|Max realtime priority\s+0\s+0`, limits)
	vmlck := regexp.MustCompile(`(?m)^VmLck:\s+(\d+) kB$`).FindStringSubmatch(status)
	require.NotNil(t, vmlck, "no VmLck in /proc/%s/status", pid)
	locked, _ := strconv.Atoi(vmlck[1])
	t.Logf("fieldcol-edge (pid %s): %d threads SCHED_FIFO, VmLck %d kB, %d seccomp filters (nspawn's: %d)\n%s", pid, fifo, locked, filters, nspawnFilters,
		grepLines(limits, "locked memory", "realtime priority"))

	if regexp.MustCompile(`Max locked memory\s+unlimited\s+unlimited`).MatchString(limits) {
		for _, l := range loops {
			assert.Regexp(t, `loop runs with SCHED_FIFO and locked memory.*"loop": "`+l+`"`, log)
		}
		assert.NotContains(t, log, "real-time scheduling not available")
		assert.Positive(t, locked, "no memory locked")
		return
	}
	require.False(t, mayRaiseLimits(t), "LimitMEMLOCK=infinity was not applied although this machine allows it:\n%s", limits)
	// Only the rlimit stops mlockall; SCHED_FIFO worked.
	for _, l := range loops {
		assert.Regexp(t, `real-time scheduling not available.*"loop": "`+l+`", "error": "mlockall: real-time scheduling not permitted: cannot allocate memory"}`, log)
	}
	t.Logf("NOT PROVEN HERE: mlockall under LimitMEMLOCK=infinity. This machine's root has a hard RLIMIT_MEMLOCK of %s and no CAP_SYS_RESOURCE, "+
		"so the container's systemd cannot raise it; mlockall fails with ENOMEM on that limit, not with EPERM from the filter. SCHED_FIFO is proven.",
		strings.Join(strings.Fields(grepLines(string(harness.ReadFile(t, "/proc/self/limits")), "locked memory"))[3:5], "/"))
}

// seccompFilters is the Seccomp_filters count of a /proc/PID/status.
func seccompFilters(t *testing.T, status string) int {
	t.Helper()
	mm := regexp.MustCompile(`(?m)^Seccomp_filters:\s+(\d+)$`).FindStringSubmatch(status)
	require.NotNil(t, mm, "no Seccomp_filters in:\n%s", status)
	n, _ := strconv.Atoi(mm[1])
	return n
}

// mayRaiseLimits reports whether this process (root, the tier's) has CAP_SYS_RESOURCE, which
// a PID 1 needs for a unit's limits above its own.
func mayRaiseLimits(t *testing.T) bool {
	t.Helper()
	mm := regexp.MustCompile(`(?m)^CapEff:\s+([0-9a-f]+)$`).FindStringSubmatch(string(harness.ReadFile(t, "/proc/self/status")))
	require.NotNil(t, mm)
	caps, err := strconv.ParseUint(mm[1], 16, 64)
	require.NoError(t, err)
	const capSysResource = 24
	return caps&(1<<capSysResource) != 0
}

// audit sends commands through the API, accepted and refused, and finds their audit lines
// in journalctl -u fieldcol by request id.
func audit(t *testing.T, m *machine) {
	cursor := m.cursor(t)
	ok := fmt.Sprintf("e2e-systemd-%d", time.Now().UnixNano())
	code, ans, err := m.apiWith(t, http.MethodPost, "/api/v1/commands", m.apiToken(t), ok,
		`{"command":"SET_TEMP_SETTINGS","loop":"oven","setpoint":55}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "%v", ans)
	refused := ok + "-refused"
	code, ans, err = m.apiWith(t, http.MethodPost, "/api/v1/commands", "not-the-token", refused,
		`{"command":"SET_MODE","loop":"oven","mode":"off"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, code, "%v", ans)
	var log string
	harness.WaitUntil(t, 10*time.Second, 200*time.Millisecond, func() (bool, string) {
		log = m.journal(t, cursor, "fieldcol.service")
		return strings.Contains(log, refused), "no audit line with request id " + refused + " in:\n" + log
	})
	accepted := grepLines(log, ok+`"`)
	assert.Contains(t, accepted, "controlloop audit")
	assert.Contains(t, accepted, `"command": "SET_TEMP_SETTINGS"`)
	assert.Contains(t, accepted, `"result": "accepted"`)
	denied := grepLines(log, refused)
	assert.Contains(t, denied, "controlloop audit")
	assert.Contains(t, denied, `"result": "unauthorized"`)
	assert.NotContains(t, log, m.apiToken(t), "the token is in the journal")
	t.Logf("journalctl -u fieldcol:\n%s\n%s", accepted, denied)
}

// latchSomething leaves state the restarts must keep: a latched sensor-fault alarm on the
// oven (a NaN reading) and the conveyor switched off by the operator.
func latchSomething(t *testing.T, m *machine, s scale) {
	token := m.apiToken(t)
	code, ans, err := m.api(t, http.MethodPost, "/api/v1/sim/faults", token, `{"device":"oven_temp","kind":"nan","duration":"1s"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "%v", ans)
	harness.WaitUntil(t, s.d(30*time.Second), 100*time.Millisecond, func() (bool, string) {
		st := m.loop(t, "oven")
		return len(latched(st)) > 0 && st["safe_state"] == true, fmt.Sprintf("oven: %v", st)
	})
	code, ans, err = m.api(t, http.MethodPost, "/api/v1/commands", token, `{"command":"SET_MODE","loop":"conveyor","mode":"off"}`)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "%v", ans)
	t.Logf("oven latched %v, conveyor mode off", latched(m.loop(t, "oven")))
}

// latched lists the names of a loop's latched alarms.
func latched(st map[string]any) []string {
	var names []string
	alarms, _ := st["alarms"].([]any)
	for _, a := range alarms {
		if am, ok := a.(map[string]any); ok && am["latched"] == true {
			names = append(names, fmt.Sprint(am["name"]))
		}
	}
	return names
}

// restartAfter sends sig to the main process and checks what follows: systemd ends it
// (result), ExecStopPost drives every actuator safe, Restart=always starts it again, systemd
// counts the restart (NRestarts), and the loops come back safe with their latches and the
// operator's mode, counting an unclean restart.
func restartAfter(t *testing.T, m *machine, s scale, sig, result string, within time.Duration) {
	restarts := m.showInt(t, "fieldcol.service", "NRestarts")
	pid := m.show(t, "fieldcol.service", "MainPID")
	ovenLatched := latched(m.loop(t, "oven"))
	require.NotEmpty(t, ovenLatched)
	unclean := uncleanRestarts(t, m)
	cursor := m.cursor(t)
	start := time.Now()
	m.kill(t, sig, pid)
	harness.WaitUntil(t, within, 100*time.Millisecond, func() (bool, string) {
		now := m.show(t, "fieldcol.service", "MainPID")
		st, _ := m.try("systemctl", "is-active", "fieldcol.service")
		return now != pid && now != "0" && strings.TrimSpace(st) == "active", "MainPID " + now + ", " + st
	})
	back := time.Since(start)
	assert.Equal(t, restarts+1, m.showInt(t, "fieldcol.service", "NRestarts"), "NRestarts")
	log := m.journal(t, cursor, "fieldcol.service")
	switch result {
	case "watchdog":
		assert.Contains(t, log, "Watchdog timeout")
		assert.Contains(t, log, "SIGABRT")
	case "signal":
		assert.Contains(t, log, "status=9/KILL")
	}
	assert.Contains(t, log, "after the service ended: SERVICE_RESULT="+result, "ExecStopPost safe-outputs did not run after the %s", sig)
	assert.Regexp(t, `(\d+) of \d+ actuators driven safe`, log)
	assert.Regexp(t, `restart after an unclean stop .*latches restored, outputs started safe`, log)
	assert.NotContains(t, log, "could not drive")

	harness.WaitUntil(t, s.start, 100*time.Millisecond, func() (bool, string) { return m.healthy(), "health check not answering" })
	oven := m.loop(t, "oven")
	assert.Equal(t, ovenLatched, latched(oven), "the oven's latched alarms after the restart")
	assert.Equal(t, true, oven["safe_state"], "the latched oven came back with its output safe")
	conveyor := m.loop(t, "conveyor")
	assert.Equal(t, "off", conveyor["mode"], "the conveyor the operator switched off came back on")
	assert.Equal(t, 0.0, conveyor["output"], "the switched-off conveyor drives its output (safe_state 0)")
	harness.WaitUntil(t, s.d(30*time.Second), 250*time.Millisecond, func() (bool, string) {
		n := uncleanRestarts(t, m)
		return n == unclean+1, fmt.Sprintf("controlloop_restarts_total{clean=\"false\"} %d, want %d", n, unclean+1)
	})
	t.Logf("kill -%s: back and healthy %s later, NRestarts %d, safe-outputs and restart in the journal:\n%s",
		sig, back.Round(100*time.Millisecond), restarts+1,
		grepLines(log, "Watchdog timeout", "Killing process", "Main process exited", "after the service ended", "driven safe", "Scheduled restart", "unclean stop"))
}

var uncleanRE = regexp.MustCompile(`(?m)^controlloop_restarts_total\{[^}]*clean="false"[^}]*\} (\d+)`)

// uncleanRestarts is the edge's count of restarts after a crash, kill or power cut (0 before
// the first).
func uncleanRestarts(t *testing.T, m *machine) int {
	t.Helper()
	var body string
	harness.WaitUntil(t, 30*time.Second, 250*time.Millisecond, func() (bool, string) {
		var err error
		body, err = m.metrics()
		return err == nil && strings.Contains(body, "controlloop_restarts_total"), fmt.Sprintf("metrics: %v", err)
	})
	n := 0
	for _, mm := range uncleanRE.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.Atoi(mm[1])
		n += v
	}
	return n
}

// grepLines returns the lines of s that contain any of subs.
func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
