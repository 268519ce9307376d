package systemd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/testproc"
)

// requireRoot skips the tier where it cannot run (not root) on a developer's machine and
// fails it under CI=true, where make test runs as root: it must never pass by not running.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "booting a Debian root with systemd-nspawn needs root (CI=true turns this skip into a failure)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// machine is a Debian root booted by systemd-nspawn with systemd as PID 1. The cached root is
// mounted read-only under a tmpfs overlay (--volatile=overlay), so each boot starts from the
// same files and nothing a test does stays. It has its own network namespace with only a
// loopback (--private-network): the edge binds its shipped default ports there, which
// cannot collide with anything else on this shared machine, and the test reaches them
// through dial, which opens sockets in that namespace. share (a host directory) is
// /srv/e2e inside.
type machine struct {
	arch   string
	share  string
	leader int // the container's PID 1, as the host sees it
	nspawn *exec.Cmd
	log    *os.File
	done   chan struct{}
	client *http.Client
	token  string // the command API's, read once from the secrets file
}

// sharedDir is where share appears inside the machine.
const sharedDir = "/srv/e2e"

// boot builds (or takes from the cache) the root of arch and boots it, waiting until
// systemd reports the system running. The machine is halted when the test ends.
func boot(t *testing.T, arch string, ready time.Duration) *machine {
	t.Helper()
	requireRoot(t)
	nspawn := testproc.LookPath(t, "systemd-nspawn", "Debian package systemd-container")
	testproc.LookPath(t, "mmdebstrap", "Debian package mmdebstrap")
	testproc.LookPath(t, "nsenter", "Debian package util-linux")

	start := time.Now()
	var stderr bytes.Buffer
	cmd := exec.Command(harness.Shipped("scripts/systemd-root.sh"), arch)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "scripts/systemd-root.sh %s: %s", arch, stderr.String())
	root := strings.TrimSpace(string(out))
	t.Logf("root of %s: %s (%s) %s", arch, root, time.Since(start).Round(time.Second), stderr.String())

	m := &machine{arch: arch, share: t.TempDir(), done: make(chan struct{})}
	log, err := os.Create(filepath.Join(t.TempDir(), "nspawn.log"))
	require.NoError(t, err)
	m.log = log
	// --capability: nspawn drops CAP_SYS_RESOURCE, CAP_IPC_LOCK and CAP_BPF from the
	// container's bounding set by default. Without the first the container's systemd cannot
	// raise a unit's hard limits (LimitRTPRIO=99, LimitMEMLOCK=infinity) as a Pi's PID 1
	// does; without the second nspawn's own seccomp filter refuses the mlock calls (@memlock)
	// to everything inside with EPERM; without the third (and bpf in the filter) systemd
	// cannot attach the BPF device programs that enforce DevicePolicy= and DeviceAllow=. The
	// service itself still gets only what its unit grants. Where the test lacks a capability
	// (CAP_SYS_RESOURCE in this VM), nspawn warns and goes on.
	m.nspawn = exec.Command(nspawn, "--quiet", "--register=no", "--keep-unit", "--boot",
		"--directory="+root, "--volatile=overlay", "--private-network",
		"--capability=CAP_SYS_RESOURCE,CAP_IPC_LOCK,CAP_BPF", "--system-call-filter=bpf",
		"--machine="+fmt.Sprintf("fieldcol-e2e-%s-%d", arch, os.Getpid()),
		"--bind="+m.share+":"+sharedDir, "--console=pipe")
	// The container's systemd on the unified cgroup hierarchy, as on Raspberry Pi OS
	// bookworm: device policy through BPF. On this VM's hybrid host that is the cgroup2
	// mount at /sys/fs/cgroup/unified; nspawn (without a host systemd) makes its payload and
	// supervisor cgroups beside itself, so it starts in a cgroup of its own, removed after.
	m.nspawn.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	cg := ownCgroup(t, fmt.Sprintf("fieldcol-e2e-%s-%d", arch, os.Getpid()))
	m.nspawn.Stdout, m.nspawn.Stderr = log, log
	// Its own process group: a Ctrl-C of go test reaches it through the cleanup, not twice.
	m.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, UseCgroupFD: true, CgroupFD: cg.fd}
	require.NoError(t, m.nspawn.Start())
	t.Cleanup(cg.remove) // after halt: cleanups run last-in first-out
	go func() {
		_ = m.nspawn.Wait()
		close(m.done)
	}()
	t.Cleanup(func() { m.halt(t) })

	// nspawn forks an intermediate process first; the container's init is the child
	// that runs systemd.
	harness.WaitUntil(t, 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		m.leader = childOf(m.nspawn.Process.Pid)
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", m.leader))
		return m.leader != 0 && strings.TrimSpace(string(comm)) == "systemd", "systemd-nspawn started no container init:\n" + m.console()
	})
	m.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: m.dialContext, DisableKeepAlives: true}}

	// is-system-running --wait returns once boot finished: running, or degraded when a unit failed.
	var state string
	harness.WaitUntil(t, ready, time.Second, func() (bool, string) {
		out, err := m.command("systemctl", "is-system-running", "--wait").Output()
		state = strings.TrimSpace(string(out))
		return state == "running" || state == "degraded", fmt.Sprintf("system state %q (%v)\n%s", state, err, m.console())
	})
	t.Logf("%s machine booted: systemd reports %q %s after systemd-nspawn started", arch, state, time.Since(start).Round(100*time.Millisecond))
	return m
}

// cgroup is a cgroup v2 directory the test made.
type cgroup struct {
	dir string
	fd  int
}

// ownCgroup makes a cgroup named name below the test's own in the cgroup2 hierarchy.
func ownCgroup(t *testing.T, name string) *cgroup {
	t.Helper()
	mount := cgroup2Mount(t)
	self := string(harness.ReadFile(t, "/proc/self/cgroup"))
	var rel string
	for _, l := range strings.Split(self, "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			rel = p
		}
	}
	dir := filepath.Join(mount, rel, name)
	require.NoError(t, os.Mkdir(dir, 0o755), "making a cgroup for systemd-nspawn")
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	return &cgroup{dir: dir, fd: fd}
}

// remove deletes the cgroup and what nspawn and the container's systemd left in it,
// deepest first (a cgroup with processes stays, and so do its parents).
func (c *cgroup) remove() {
	_ = unix.Close(c.fd)
	var dirs []string
	_ = filepath.WalkDir(c.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
}

// cgroup2Mount is where the unified cgroup hierarchy is mounted: /sys/fs/cgroup on a
// unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	for _, l := range strings.Split(string(harness.ReadFile(t, "/proc/self/mountinfo")), "\n") {
		// ... mountpoint ... - cgroup2 source options
		if _, after, ok := strings.Cut(l, " - "); ok && strings.HasPrefix(after, "cgroup2 ") {
			if f := strings.Fields(l); len(f) > 4 {
				return f[4]
			}
		}
	}
	t.Fatal("no cgroup2 hierarchy mounted: the container's systemd needs one for its device policy")
	return ""
}

// hostPID translates a process id inside the machine to this machine's.
func (m *machine) hostPID(t testing.TB, inside string) int {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", m.leader))
	require.NoError(t, err)
	dirs, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || l != ns {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		// NSpid: <this machine's> <the container's>
		if mm := regexp.MustCompile(`(?m)^NSpid:\s+\d+\s+(\d+)$`).FindSubmatch(status); mm != nil && string(mm[1]) == inside {
			return pid
		}
	}
	t.Fatalf("no process %s in the machine", inside)
	return 0
}

// emulated reports whether the machine's programs run under qemu-user.
func (m *machine) emulated() bool { return m.arch != runtime.GOARCH }

// childOf returns the first child process of pid, 0 when it has none yet.
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// console is what systemd-nspawn printed.
func (m *machine) console() string {
	b, _ := os.ReadFile(m.log.Name())
	return string(b)
}

// halt asks the container's systemd to power off (nspawn's first SIGTERM) and waits; an
// emulated one may not react to it, and nspawn's second SIGTERM ends it at once.
func (m *machine) halt(t *testing.T) {
	if m.nspawn.Process == nil {
		return
	}
	for _, grace := range []time.Duration{60 * time.Second, 30 * time.Second} {
		_ = m.nspawn.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
			return
		case <-time.After(grace):
			t.Logf("systemd-nspawn did not end %s after SIGTERM", grace)
		}
	}
	_ = m.nspawn.Process.Kill()
	<-m.done
}

// command runs name inside the machine: in all its namespaces (nsenter), so systemctl and
// journalctl talk to its systemd and journald, with a plain environment.
func (m *machine) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(m.leader), "--all", "--", name}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "TERM=dumb"}
	return cmd
}

// try runs a command inside and returns its combined output.
func (m *machine) try(name string, args ...string) (string, error) {
	out, err := m.command(name, args...).CombinedOutput()
	return string(out), err
}

// run runs a command inside and fails the test when it fails.
func (m *machine) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := m.try(name, args...)
	require.NoError(t, err, "in the machine: %s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

// sh runs a shell script inside and fails the test when it fails.
func (m *machine) sh(t testing.TB, script string) string {
	t.Helper()
	return m.run(t, "sh", "-ec", script)
}

// kill sends SIG (a name: KILL, STOP, CONT) to pid inside the machine (the shell's kill:
// the minimal root has no procps).
func (m *machine) kill(t testing.TB, sig, pid string) {
	t.Helper()
	m.run(t, "sh", "-c", `kill -"$0" "$1"`, sig, pid)
}

// writeFile puts content at path inside the machine with mode.
func (m *machine) writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	src := filepath.Join(m.share, strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_"))
	require.NoError(t, os.WriteFile(src, []byte(content), 0o600))
	m.run(t, "install", "-D", "-m", fmt.Sprintf("%o", mode), sharedDir+"/"+filepath.Base(src), path)
}

// show returns one property of a unit (systemctl show -p NAME --value).
func (m *machine) show(t testing.TB, unit, prop string) string {
	t.Helper()
	return strings.TrimSpace(m.run(t, "systemctl", "show", "-p", prop, "--value", unit))
}

// showInt is show for a numeric property.
func (m *machine) showInt(t testing.TB, unit, prop string) int64 {
	t.Helper()
	v := m.show(t, unit, prop)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err, "%s %s=%q", unit, prop, v)
	return n
}

// cursor is the journal's current position, for reading what comes after it.
func (m *machine) cursor(t testing.TB) string {
	t.Helper()
	out := m.run(t, "journalctl", "--show-cursor", "-n", "0", "--quiet")
	_, c, ok := strings.Cut(out, "-- cursor: ")
	require.True(t, ok, "no cursor in %q", out)
	return strings.TrimSpace(c)
}

// journal returns the messages of unit after cursor (all of them when cursor is empty).
func (m *machine) journal(t testing.TB, cursor, unit string) string {
	t.Helper()
	args := []string{"--no-pager", "--quiet", "-o", "short-monotonic", "-u", unit}
	if cursor != "" {
		args = append(args, "--after-cursor="+cursor)
	}
	return m.run(t, "journalctl", args...)
}

// dialContext opens a connection in the machine's network namespace: a thread that enters
// it dials and then ends with its goroutine (never unlocked, so Go discards the thread). The
// socket stays in that namespace whichever thread uses it later.
func (m *machine) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", m.leader), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("entering the machine's network namespace: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// dial is dialContext without a context.
func (m *machine) dial(network, addr string) (net.Conn, error) {
	return m.dialContext(context.Background(), network, addr)
}

// apiToken is the command API's token the package wrote into the secrets file.
func (m *machine) apiToken(t testing.TB) string {
	t.Helper()
	if m.token != "" {
		return m.token
	}
	env := m.run(t, "cat", "/etc/fieldcol/fieldcol-edge.env")
	for _, l := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(l, "FIELDCOL_API_TOKEN="); ok {
			m.token = v
			return v
		}
	}
	t.Fatalf("no FIELDCOL_API_TOKEN in /etc/fieldcol/fieldcol-edge.env:\n%s", env)
	return ""
}

// api calls the edge's command API on its shipped endpoint (localhost:8090 in the machine).
func (m *machine) api(t testing.TB, method, path, token, body string) (int, map[string]any, error) {
	t.Helper()
	return m.apiWith(t, method, path, token, "", body)
}

// apiWith is api with a request id (X-Request-Id), which the audit line carries.
func (m *machine) apiWith(t testing.TB, method, path, token, requestID, body string) (int, map[string]any, error) {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:8090"+path, strings.NewReader(body))
	require.NoError(t, err)
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var ans map[string]any
	if err := json.Unmarshal(b, &ans); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %d %q: %w", method, path, resp.StatusCode, b, err)
	}
	return resp.StatusCode, ans, nil
}

// loop returns the API's view of one loop, failing the test when the API does not answer.
func (m *machine) loop(t testing.TB, name string) map[string]any {
	t.Helper()
	code, ans, err := m.api(t, http.MethodGet, "/api/v1/loops/"+name, m.apiToken(t), "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "%v", ans)
	return ans
}

// get fetches url from inside the machine's network namespace.
func (m *machine) get(url string) (code int, body string, err error) {
	resp, err := m.client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// metrics returns the edge's Prometheus exposition (localhost:8889 in the machine).
func (m *machine) metrics() (string, error) {
	code, body, err := m.get("http://127.0.0.1:8889/metrics")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %d", code)
	}
	return body, err
}

// healthy reports whether the edge's health check answers 200 (localhost:13133).
func (m *machine) healthy() bool {
	code, _, err := m.get("http://127.0.0.1:13133/")
	return err == nil && code == http.StatusOK
}

// monotonicMicros is CLOCK_MONOTONIC in microseconds: the clock of systemd's
// *TimestampMonotonic properties (the machine shares the host's clocks).
func monotonicMicros(t testing.TB) int64 {
	t.Helper()
	var ts unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	return ts.Nano() / 1000
}
