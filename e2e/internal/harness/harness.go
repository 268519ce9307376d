// Package e2e tests the ocb-built distributions as a user runs them: real binaries with the
// shipped configs on free ports, OTLP in, and what arrives at a sink or in a real Prometheus.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// repoRoot is the repository's top directory; bin/ holds the binaries under test.
var repoRoot string

// TestMain builds the three distributions once for the whole run (make skips what is up
// to date, so under `make test` this costs nothing).
func TestMain(m *testing.M) {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	repoRoot = root
	if os.Getenv("FIELDCOL_E2E_NO_BUILD") == "" {
		cmd := exec.Command("make", "-C", repoRoot, "build")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: make build failed: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// binary is the path of a built distribution: fieldcol, fieldcol-edge or fieldcol-gateway.
func binary(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot, "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built (make build): %v", p, err)
	}
	return p
}

// shipped is the path of a file in the repository, e.g. distributions/edge/config.yaml.
func shipped(rel string) string { return filepath.Join(repoRoot, rel) }
