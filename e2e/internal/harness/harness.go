// Package harness is what the end-to-end tiers (e2e/edge, e2e/gateway, e2e/drills and
// e2e/packaging) share: the built distributions and the repository's shipped files,
// collectors on free loopback ports, their command API and metrics, sample OTLP data, and
// every other server a test starts on a port it picked (Alertmanager, the stores, an S3
// server). Each of those starts goes through testproc.Retry, here and nowhere else, so a
// port another program takes between the pick and the bind costs a new start, not a failure.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

var (
	rootOnce sync.Once
	root     string
	rootErr  error
)

// Root is the repository's top directory (the first directory above the test's own that
// holds a go.mod); bin/ holds the binaries under test.
func Root() string {
	rootOnce.Do(func() { root, rootErr = testproc.RepoRoot() })
	if rootErr != nil {
		panic("e2e harness: finding the repository: " + rootErr.Error())
	}
	return root
}

// Main is a tier's TestMain: it runs `make <targets>` once for the tier (make skips what is
// up to date, so under `make test` this costs nothing), then the tests. FIELDCOL_E2E_NO_BUILD=1
// skips the build, as `make e2e` does after building everything itself. Tiers started
// together (`go test ./e2e/...`) build one after the other, never into bin/ at once.
func Main(m *testing.M, targets ...string) {
	if os.Getenv("FIELDCOL_E2E_NO_BUILD") == "" {
		if err := build(targets); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: make %v failed: %v\n", targets, err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// build runs make under an exclusive lock on .run/e2e-build.lock.
func build(targets []string) error {
	lockDir := filepath.Join(Root(), ".run")
	if err := os.MkdirAll(lockDir, 0o750); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(lockDir, "e2e-build.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	// Closing the file releases the lock.
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	cmd := exec.Command("make", append([]string{"-C", Root()}, targets...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// Binary is the path of a built distribution: fieldcol, fieldcol-edge or fieldcol-gateway.
func Binary(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Root(), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built (make build): %v", p, err)
	}
	return p
}

// Shipped is the path of a file in the repository, e.g. distributions/edge/config.yaml.
func Shipped(rel string) string { return filepath.Join(Root(), rel) }

// Tool is a program `make .tools/NAME` builds into .tools/ from its tools module; see
// testproc.Tool.
func Tool(t testing.TB, name string) string {
	t.Helper()
	return testproc.Tool(t, name)
}

// ReadFile returns the contents of path, failing the test when it cannot be read.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// Overlay writes a config fragment to merge over a shipped config and returns its path.
func Overlay(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "overlay.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// WaitUntil polls cond every tick until it holds, and fails the test after timeout with the
// message of cond's last try (assert.Eventually formats its message before the first try).
func WaitUntil(t testing.TB, timeout, tick time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg)
		}
		time.Sleep(tick)
	}
}

// ClosedAddr is a loopback address nothing listened on a moment ago, for an exporter whose
// store a test does not run: it fails to send there, never reaching someone's real store.
func ClosedAddr(t testing.TB) string { return testproc.ClosedAddr(t) }
