package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
)

// Directories a process of fieldcol's could write to by its file permissions, made by the
// test outside the state directory: the sandbox must refuse them all the same.
var outsideDirs = []string{"/var/lib/fieldcol-e2e-outside", "/srv/fieldcol-e2e-outside", "/etc/fieldcol-e2e-outside", "/run/fieldcol-e2e-outside"}

// hardening checks what the shipped sandbox allows, two ways. The running service's own
// mount namespace: even root there cannot write outside the state directory. And a probe
// unit made from the installed fieldcol.service (every line but the start, notify,
// watchdog and restart lines, ExecStart a probe script) that tries, as the fieldcol user,
// writes everywhere and opens of devices inside and outside DeviceAllow=.
func hardening(t *testing.T, m *machine) {
	for _, d := range outsideDirs {
		m.run(t, "install", "-d", "-m", "0777", d)
	}
	// This machine's nsenter enters the service's mount namespace (the machine's own would
	// run under qemu-user for arm64, which cannot setns a mount namespace); touch is the
	// machine's, found there.
	pid := strconv.Itoa(m.hostPID(t, m.show(t, "fieldcol.service", "MainPID")))
	inService := func(args ...string) (string, error) {
		out, err := exec.Command("nsenter", append([]string{"--target", pid, "--mount", "--"}, args...)...).CombinedOutput()
		return string(out), err
	}
	for _, d := range append([]string{"/etc", "/usr/bin", "/var/lib", "/var/log", "/run/lock", "/dev/shm"}, outsideDirs...) {
		out, err := inService("touch", d+"/.fieldcol-e2e")
		assert.Error(t, err, "root wrote %s in the service's mount namespace", d)
		assert.Contains(t, out, "Read-only file system", "touch %s in the service's mount namespace", d)
	}
	out, err := inService("touch", "/var/lib/fieldcol/controlloop/.fieldcol-e2e")
	require.NoError(t, err, "%s", out)
	m.run(t, "rm", "/var/lib/fieldcol/controlloop/.fieldcol-e2e")

	// Two device nodes any user may open by their mode: /dev/gpiomem (made from FUSE's
	// numbers, 10:229, since there is no Pi here) is in DeviceAllow=, 10:200 (TUN) is not.
	// Root outside the unit opens both: what refuses one is the unit's device policy.
	m.sh(t, `mknod -m 0666 /dev/gpiomem c 10 229
mknod -m 0666 /dev/fieldcol-e2e-tun c 10 200
exec 3</dev/gpiomem 4</dev/fieldcol-e2e-tun`)
	unit := m.run(t, "cat", "/usr/lib/systemd/system/fieldcol.service")
	m.writeFile(t, "/etc/systemd/system/fieldcol-e2e-probe.service", probeUnit(unit), 0o644)
	m.writeFile(t, "/usr/local/bin/fieldcol-e2e-probe", probeScript, 0o755)
	m.run(t, "systemctl", "daemon-reload")
	cursor := m.cursor(t)
	m.run(t, "systemctl", "start", "fieldcol-e2e-probe.service")
	log := m.journal(t, cursor, "fieldcol-e2e-probe.service")
	results := map[string]string{}
	for _, mm := range regexp.MustCompile(`probe: (\S+ \S+) (.*)`).FindAllStringSubmatch(log, -1) {
		results[mm[1]] = strings.TrimSpace(mm[2])
	}
	t.Logf("probe unit (the installed unit's sandbox, User=fieldcol):\n%s", grepLines(log, "probe: "))
	require.NotEmpty(t, results, "the probe printed nothing:\n%s", log)

	assert.Equal(t, "uid fieldcol", "uid "+results["uid is"], "the probe did not run as the service user")
	for _, d := range []string{"/var/lib/fieldcol", "/var/lib/fieldcol/controlloop"} {
		assert.Equal(t, "ok", results["write "+d], "the state directory %s", d)
	}
	// PrivateTmp: writable, and the service's own.
	assert.Equal(t, "ok", results["write /tmp"])
	assert.Equal(t, "ok", results["write /var/tmp"])
	_, err = m.try("test", "-e", "/tmp/.fieldcol-e2e-probe-marker")
	assert.Error(t, err, "the service's /tmp is the system's (PrivateTmp)")
	for _, d := range append([]string{"/etc", "/etc/fieldcol", "/usr/bin", "/usr/local/bin", "/var/lib", "/var/log", "/var/cache", "/srv", "/opt", "/run", "/run/lock", "/dev/shm"}, outsideDirs...) {
		assert.Equal(t, "Read-only file system", results["write "+d], "write %s", d)
	}
	for _, d := range []string{"/root", "/home"} {
		assert.NotEqual(t, "ok", results["write "+d], "ProtectHome: wrote %s", d)
	}
	// DevicePolicy=closed allows the pseudo devices; DeviceAllow lists only GPIO, I2C and SPI.
	assert.Equal(t, "ok", results["open /dev/null"])
	assert.Equal(t, "ok", results["open /dev/urandom"])
	assert.Equal(t, "ok", results["open /dev/gpiomem"], "DeviceAllow=/dev/gpiomem rw")
	if m.emulated() {
		// The machine's systemd is aarch64 under qemu-user, which does not pass its bpf()
		// calls on: no BPF device program is attached.
		t.Logf("NOT PROVEN UNDER EMULATION: DevicePolicy=closed (a device outside DeviceAllow=: %q)", results["open /dev/fieldcol-e2e-tun"])
	} else {
		assert.Equal(t, "Operation not permitted", results["open /dev/fieldcol-e2e-tun"], "DevicePolicy=closed: a device outside DeviceAllow= opened")
	}
	m.run(t, "rm", "/etc/systemd/system/fieldcol-e2e-probe.service", "/usr/local/bin/fieldcol-e2e-probe",
		"/dev/gpiomem", "/dev/fieldcol-e2e-tun")
	m.run(t, "systemctl", "daemon-reload")
	for _, d := range outsideDirs {
		m.run(t, "rmdir", d)
	}
}

// probeUnit is the installed unit with its process lines replaced: the sandbox, user,
// capabilities, limits and environment stay exactly as shipped.
func probeUnit(unit string) string {
	drop := map[string]bool{
		"Description": true, "Type": true, "NotifyAccess": true, "WatchdogSec": true, "WatchdogSignal": true,
		"Restart": true, "RestartSec": true, "ExecStart": true, "ExecStopPost": true,
		"StartLimitIntervalSec": true, "StartLimitBurst": true,
	}
	var out []string
	section := ""
	for _, l := range strings.Split(unit, "\n") {
		trim := strings.TrimSpace(l)
		if strings.HasPrefix(trim, "[") {
			section = trim
		}
		key, _, _ := strings.Cut(trim, "=")
		if section == "[Install]" || drop[key] {
			continue
		}
		out = append(out, l)
		switch trim {
		case "[Unit]":
			out = append(out, "Description=fieldcol e2e probe in fieldcol.service's sandbox")
		case "[Service]":
			out = append(out, "Type=oneshot", "ExecStart=/usr/local/bin/fieldcol-e2e-probe")
		}
	}
	return strings.Join(out, "\n") + "\n"
}

// probeScript prints one line per attempt: "probe: write DIR ok|<error>", "probe: open DEV
// ok|<error>", the error being the shell's text of the errno.
var probeScript = `#!/bin/sh
echo "probe: uid is $(id -un)"
for d in /var/lib/fieldcol /var/lib/fieldcol/controlloop /tmp /var/tmp /etc /etc/fieldcol /usr/bin /usr/local/bin \
	/var/lib /var/log /var/cache /srv /opt /run /run/lock /root /home /dev/shm ` + strings.Join(outsideDirs, " ") + `; do
	if err=$( (: >"$d/.fieldcol-e2e-probe") 2>&1); then
		echo "probe: write $d ok"
		rm -f "$d/.fieldcol-e2e-probe"
	else
		echo "probe: write $d ${err##*: }"
	fi
done
: >/tmp/.fieldcol-e2e-probe-marker
for dev in /dev/null /dev/urandom /dev/gpiomem /dev/fieldcol-e2e-tun; do
	if err=$( (exec 3<"$dev") 2>&1); then
		echo "probe: open $dev ok"
	else
		echo "probe: open $dev ${err##*: }"
	fi
done
`

var exposureRE = regexp.MustCompile(`Overall exposure level for fieldcol\.service: ([0-9.]+) (\S+)`)

// securityScore compares systemd-analyze security on the running unit inside the machine
// with the offline check of the shipped file, inside and on this machine.
func securityScore(t *testing.T, m *machine) {
	online, err := m.try("systemd-analyze", "security", "--no-pager", "fieldcol.service")
	require.NoError(t, err, "%s", online)
	offline, err := m.try("systemd-analyze", "security", "--no-pager", "--offline=true", "/usr/lib/systemd/system/fieldcol.service")
	require.NoError(t, err, "%s", offline)
	var hostOut bytes.Buffer
	cmd := exec.Command("systemd-analyze", "security", "--no-pager", "--offline=true", harness.Shipped("distributions/edge/fieldcol.service"))
	cmd.Stdout, cmd.Stderr = &hostOut, &hostOut
	require.NoError(t, cmd.Run(), "%s", hostOut.String())
	score := func(name, out string) string {
		mm := exposureRE.FindStringSubmatch(out)
		require.NotNil(t, mm, "%s: no exposure level in:\n%s", name, out)
		return mm[1] + " " + mm[2]
	}
	o, off, host := score("online", online), score("offline", offline), score("host offline", hostOut.String())
	assert.Equal(t, off, o, "the running unit scores differently from its file:\n%s", diffLines(offline, online))
	assert.Equal(t, host, o, "inside and on the host")
	t.Logf("systemd-analyze security fieldcol.service: running %s, offline in the machine %s, offline on the host %s", o, off, host)
	if v, err := os.ReadFile("/proc/version"); err == nil {
		t.Logf("kernel: %s", strings.TrimSpace(string(v)))
	}
}

// diffLines lists the lines of b that are not in a, for a failure message.
func diffLines(a, b string) string {
	seen := map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		seen[l] = true
	}
	var out []string
	for _, l := range strings.Split(b, "\n") {
		if !seen[l] {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
