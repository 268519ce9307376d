package packaging

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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

// The packaging tests check what scripts/dist.sh built into dist/ (make test runs
// `scripts/dist.sh --test` before the e2e tests: the edge for amd64, arm64 and armv7 and the
// amd64 .deb; make dist builds every target).

// distFiles returns the files of the last scripts/dist.sh run, from dist/SHA256SUMS, by name.
// Without it the test is skipped on a developer's machine and fails under CI.
func distFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join(harness.Root(), "dist")
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		msg := fmt.Sprintf("dist/SHA256SUMS: %v (scripts/dist.sh --test builds it; make test runs it)", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer f.Close()
	files := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "malformed SHA256SUMS line %q", sc.Text())
		files[name] = sum
	}
	require.NoError(t, sc.Err())
	return files
}

// distDeb returns the path and version of the .deb of arch in dist/.
func distDeb(t *testing.T, files map[string]string, arch string) (path, version string) {
	t.Helper()
	re := regexp.MustCompile(`^fieldcol-edge_(.+)-1_` + regexp.QuoteMeta(arch) + `\.deb$`)
	for name := range files {
		if m := re.FindStringSubmatch(name); m != nil {
			return filepath.Join(harness.Root(), "dist", name), m[1]
		}
	}
	t.Fatalf("dist/SHA256SUMS lists no fieldcol-edge .deb for %s", arch)
	return "", ""
}

func TestDistChecksumsAndStaticBinaries(t *testing.T) {
	files := distFiles(t)
	for _, want := range []string{"fieldcol-edge_linux_amd64", "fieldcol-edge_linux_arm64", "fieldcol-edge_linux_armhf"} {
		require.Contains(t, files, want, "dist.sh --test and make dist both build %s", want)
	}
	machines := map[string]struct {
		machine elf.Machine
		class   elf.Class
	}{
		"amd64": {elf.EM_X86_64, elf.ELFCLASS64},
		"arm64": {elf.EM_AARCH64, elf.ELFCLASS64},
		"armhf": {elf.EM_ARM, elf.ELFCLASS32},
	}
	for name, sum := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(harness.Root(), "dist", name)
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			h := sha256.New()
			_, err = io.Copy(h, f)
			require.NoError(t, err)
			assert.Equal(t, sum, hex.EncodeToString(h.Sum(nil)), "SHA256SUMS does not match %s", name)
			if strings.HasSuffix(name, ".deb") {
				return
			}
			arch := name[strings.LastIndex(name, "_")+1:]
			want, ok := machines[arch]
			require.True(t, ok, "unexpected architecture in %s", name)
			ef, err := elf.Open(path)
			require.NoError(t, err)
			defer ef.Close()
			assert.Equal(t, want.machine, ef.Machine)
			assert.Equal(t, want.class, ef.Class)
			for _, p := range ef.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s asks for a dynamic loader: not static (CGO_ENABLED=0)", name)
			}
			libs, err := ef.ImportedLibraries()
			require.NoError(t, err)
			assert.Empty(t, libs, "%s links shared libraries", name)
			assert.Nil(t, ef.Section(".symtab"), "%s has a symbol table: not stripped (-s -w)", name)
		})
	}
	// The version make dist stamps is the one the binary reports and the package carries.
	_, version := distDeb(t, files, "amd64")
	out, err := exec.Command(filepath.Join(harness.Root(), "dist", "fieldcol-edge_linux_amd64"), "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "fieldcol-edge version "+version, strings.TrimSpace(string(out)))
}

// unitForVerify is the shipped unit with ExecStart pointing at the built binary:
// systemd-analyze verify checks that the command exists and is executable.
func unitForVerify(t *testing.T) string {
	t.Helper()
	unit, err := os.ReadFile(harness.Shipped("distributions/edge/fieldcol.service"))
	require.NoError(t, err)
	const exec = "ExecStart=/usr/bin/fieldcol-edge "
	require.Contains(t, string(unit), exec)
	edited := strings.Replace(string(unit), exec, "ExecStart="+harness.Binary(t, "fieldcol-edge")+" ", 1)
	p := filepath.Join(t.TempDir(), "fieldcol.service")
	require.NoError(t, os.WriteFile(p, []byte(edited), 0o644))
	return p
}

var exposureRE = regexp.MustCompile(`Overall exposure level for fieldcol\.service: ([0-9.]+) (\S+)`)

func TestSystemdUnitVerifiesAndIsHardened(t *testing.T) {
	sa := testproc.LookPath(t, "systemd-analyze", "Debian package systemd")
	unit := unitForVerify(t)

	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify: %s", out)
	// verify exits 0 on warnings about the unit's own lines too: any mention of it fails.
	assert.NotContains(t, string(out), "fieldcol.service", "systemd-analyze verify warns: %s", out)

	out, err = exec.Command(sa, "security", "--offline=true", unit).CombinedOutput()
	require.NoError(t, err, "systemd-analyze security: %s", out)
	m := exposureRE.FindStringSubmatch(string(out))
	require.NotNil(t, m, "no exposure level in: %s", out)
	score, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	t.Logf("systemd-analyze security --offline=true: fieldcol.service exposure %.1f %s", score, m[2])
	assert.LessOrEqual(t, score, 3.0, "exposure above 3.0:\n%s", out)
	assert.Equal(t, "OK", m[2])

	// What the unit promises the control loop and the operator, beyond the score.
	text := harness.ReadFile(t, harness.Shipped("distributions/edge/fieldcol.service"))
	for _, line := range []string{
		"Type=notify", "WatchdogSec=10s", "Restart=always", "StateDirectory=fieldcol fieldcol/controlloop",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
		"SystemCallFilter=@system-service", "DevicePolicy=closed",
		"AmbientCapabilities=CAP_SYS_NICE", "CapabilityBoundingSet=CAP_SYS_NICE", "LimitRTPRIO=99",
		"Environment=GOMEMLIMIT=80MiB", "User=fieldcol",
	} {
		assert.Contains(t, strings.Split(string(text), "\n"), line)
	}
}

func TestPackageLintian(t *testing.T) {
	lintian := testproc.LookPath(t, "lintian", "Debian package lintian")
	files := distFiles(t)
	n := 0
	for name := range files {
		if !strings.HasSuffix(name, ".deb") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(lintian, "--tag-display-limit", "0", filepath.Join(harness.Root(), "dist", name))
			out, err := cmd.CombinedOutput()
			t.Logf("lintian %s:\n%s", name, out)
			for _, l := range strings.Split(string(out), "\n") {
				assert.False(t, strings.HasPrefix(l, "E: "), "lintian error: %s", l)
			}
			// lintian exits 1 on errors (and only then with the default --fail-on error).
			assert.NoError(t, err)
		})
	}
	require.NotZero(t, n, "dist/SHA256SUMS lists no .deb")
}

// TestArmBinariesRunUnderQemu runs the Pi builds on this machine through qemu-user: they
// validate the shipped config, start on the sim plant, answer the health check and stop
// cleanly.
func TestArmBinariesRunUnderQemu(t *testing.T) {
	files := distFiles(t)
	for _, tc := range []struct{ arch, qemu string }{
		{"arm64", "qemu-aarch64-static"},
		{"armhf", "qemu-arm-static"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			qemu := testproc.LookPath(t, tc.qemu, "Debian package qemu-user-static")
			name := "fieldcol-edge_linux_" + tc.arch
			require.Contains(t, files, name)
			bin := filepath.Join(harness.Root(), "dist", name)
			config := harness.Shipped("distributions/edge/config.yaml")

			cmd := exec.Command(qemu, bin, "validate", "--config", config)
			cmd.Env = append(os.Environ(), harness.CommonEnv(t)...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s validate under %s: %s", name, tc.qemu, out)

			start := time.Now()
			// Emulated start-up is several times slower than native.
			c := harness.CollectorSpec{Bin: bin, Via: qemu, Configs: []string{config}, Ready: 3 * time.Minute}.Start(t)
			t.Logf("%s under %s: healthy %s after start", name, tc.qemu, time.Since(start).Round(100*time.Millisecond))
			// The loops run and the pipeline serves their metrics.
			require.Eventually(t, func() bool {
				body, err := getBody("http://" + c.Metrics + "/metrics")
				return err == nil && strings.Contains(body, "controlloop_cycles_total")
			}, 2*time.Minute, time.Second, "no controlloop_cycles_total on the prometheus exporter")
			c.Stop(t)
		})
	}
}

// getBody is httpGet without failing the test, for polling.
func getBody(url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// pkgRun runs a command and fails the test with its output when it fails.
func pkgRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestDebInstallRemovePurge installs the amd64 .deb on this machine with dpkg, checks what
// it set up, upgrades over an edited conffile, removes it (state kept) and purges it (state
// gone). It changes the machine, so it runs only as root and only where no fieldcol-edge
// package or /etc/fieldcol, /var/lib/fieldcol is there to be harmed; it purges the package
// and deletes the user it created whatever happens.
func TestDebInstallRemovePurge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dpkg -i needs root; make test runs as root on the CI machine")
	}
	dpkg := testproc.LookPath(t, "dpkg", "Debian's dpkg")
	deb, version := distDeb(t, distFiles(t), "amd64")
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "fieldcol-edge").Output(); err == nil && strings.Contains(string(out), "installed") {
		t.Skipf("fieldcol-edge is installed on this machine (%s): not touching it", out)
	}
	for _, p := range []string{"/etc/fieldcol", "/var/lib/fieldcol", "/etc/default/fieldcol", "/usr/bin/fieldcol-edge"} {
		if pathExists(p) {
			t.Skipf("%s exists on this machine: not touching it", p)
		}
	}
	userExisted := exec.Command("getent", "passwd", "fieldcol").Run() == nil
	groupExisted := exec.Command("getent", "group", "fieldcol").Run() == nil
	t.Cleanup(func() {
		if out, err := exec.Command(dpkg, "--purge", "fieldcol-edge").CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg --purge fieldcol-edge: %v: %s", err, out)
		}
		if !userExisted {
			_ = exec.Command("deluser", "--system", "fieldcol").Run()
		}
		if !groupExisted {
			_ = exec.Command("delgroup", "--system", "fieldcol").Run()
		}
	})

	pkgRun(t, dpkg, "-i", deb)
	assert.Equal(t, "fieldcol-edge version "+version, strings.TrimSpace(pkgRun(t, "/usr/bin/fieldcol-edge", "--version")))
	pkgRun(t, "getent", "passwd", "fieldcol")
	st, err := os.Stat("/var/lib/fieldcol")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), st.Mode().Perm())
	owner := strings.TrimSpace(pkgRun(t, "stat", "-c", "%U:%G", "/var/lib/fieldcol"))
	assert.Equal(t, "fieldcol:fieldcol", owner)
	conffiles := pkgRun(t, "dpkg-query", "-W", "-f=${Conffiles}", "fieldcol-edge")
	assert.Contains(t, conffiles, "/etc/fieldcol/config.yaml")
	assert.Contains(t, conffiles, "/etc/default/fieldcol")
	envFile := "/etc/fieldcol/fieldcol-edge.env"
	st, err = os.Stat(envFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the secrets file must be root-only")
	secrets := harness.ReadFile(t, envFile)
	assert.Regexp(t, `(?m)^FIELDCOL_API_TOKEN=[0-9a-f]{48}$`, string(secrets))
	assert.FileExists(t, "/usr/lib/systemd/system/fieldcol.service")
	assert.FileExists(t, "/usr/bin/fieldcol-backup")

	// The installed binary validates the installed config with the installed environment,
	// as the unit would start it.
	pkgRun(t, "sh", "-c", "set -a; . /etc/default/fieldcol; . "+envFile+"; exec /usr/bin/fieldcol-edge validate --config=/etc/fieldcol/config.yaml")

	// An operator's edit of a conffile and the token survive a reinstall.
	const edit = "\n# edited by the operator (e2e TestDebInstallRemovePurge)\n"
	f, err := os.OpenFile("/etc/fieldcol/config.yaml", os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(edit)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	pkgRun(t, dpkg, "-i", "--force-confold", deb)
	assert.Contains(t, string(harness.ReadFile(t, "/etc/fieldcol/config.yaml")), edit)
	assert.Equal(t, string(secrets), string(harness.ReadFile(t, envFile)), "reinstalling rewrote the API token")

	// Remove keeps the state (latched alarms, the disk queue) and the config; purge does not.
	latches := "/var/lib/fieldcol/controlloop/latches.json"
	require.NoError(t, os.WriteFile(latches, []byte(`{"latches":[]}`), 0o600))
	pkgRun(t, dpkg, "-r", "fieldcol-edge")
	assert.NoFileExists(t, "/usr/bin/fieldcol-edge")
	assert.FileExists(t, latches, "dpkg -r deleted the latched alarms")
	assert.FileExists(t, "/etc/fieldcol/config.yaml")
	assert.FileExists(t, envFile)
	pkgRun(t, dpkg, "--purge", "fieldcol-edge")
	for _, p := range []string{"/var/lib/fieldcol", "/etc/fieldcol", "/etc/default/fieldcol"} {
		assert.False(t, pathExists(p), "%s is left after dpkg --purge", p)
	}
}

// TestAnsiblePlaybookSyntax checks the fleet rollout example of docs/install-pi.md.
func TestAnsiblePlaybookSyntax(t *testing.T) {
	ap := testproc.LookPath(t, "ansible-playbook", "Debian package ansible")
	dir := harness.Shipped("deploy/ansible")
	cmd := exec.Command(ap, "--syntax-check", "-i", filepath.Join(dir, "inventory.example.yml"), filepath.Join(dir, "fieldcol-edge.yml"))
	// Ansible writes its temporary files under HOME; keep them in the test's directory.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "ANSIBLE_LOCAL_TEMP="+filepath.Join(home, "tmp"), "ANSIBLE_NOCOLOR=1")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "ansible-playbook --syntax-check: %s", out)
	assert.Contains(t, string(out), "playbook: ")
}

// TestDebContents checks each .deb's control fields, conffiles and files without
// installing it (the install test needs root; this one runs everywhere).
func TestDebContents(t *testing.T) {
	dpkgDeb := testproc.LookPath(t, "dpkg-deb", "Debian's dpkg")
	files := distFiles(t)
	n := 0
	for name := range files {
		if !strings.HasSuffix(name, ".deb") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			deb := filepath.Join(harness.Root(), "dist", name)
			arch := strings.TrimSuffix(name[strings.LastIndex(name, "_")+1:], ".deb")
			assert.Equal(t, arch, strings.TrimSpace(pkgRun(t, dpkgDeb, "-f", deb, "Architecture")))
			assert.Equal(t, "fieldcol-edge", strings.TrimSpace(pkgRun(t, dpkgDeb, "-f", deb, "Package")))
			conffiles := strings.Fields(pkgRun(t, dpkgDeb, "-I", deb, "conffiles"))
			assert.ElementsMatch(t, []string{"/etc/default/fieldcol", "/etc/fieldcol/config.yaml"}, conffiles)
			listing := pkgRun(t, dpkgDeb, "-c", deb)
			for _, p := range []string{
				"./usr/bin/fieldcol-edge", "./etc/fieldcol/config.yaml", "./etc/default/fieldcol",
				"./usr/lib/systemd/system/fieldcol.service", "./usr/bin/fieldcol-backup", "./usr/bin/fieldcol-restore",
				"./usr/lib/systemd/system/fieldcol-backup.timer", "./usr/share/doc/fieldcol-edge/copyright",
				"./usr/lib/modules-load.d/fieldcol.conf",
			} {
				assert.Regexp(t, `(?m) `+regexp.QuoteMeta(p)+`$`, listing, "%s is not in %s", p, name)
			}
			// The packaged binary is the one built for the package's architecture.
			bin := filepath.Join(harness.Root(), "dist", "fieldcol-edge_linux_"+arch)
			want, ok := files[filepath.Base(bin)]
			require.True(t, ok, "SHA256SUMS has no %s", filepath.Base(bin))
			out, err := exec.Command("sh", "-c", `"$0" --fsys-tarfile "$1" | tar -xOf - ./usr/bin/fieldcol-edge | sha256sum`, dpkgDeb, deb).Output()
			require.NoError(t, err)
			assert.Equal(t, want, strings.Fields(string(out))[0], "the .deb's binary is not dist/%s", filepath.Base(bin))
		})
	}
	require.NotZero(t, n, "dist/SHA256SUMS lists no .deb")
}
