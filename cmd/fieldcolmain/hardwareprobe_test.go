package fieldcolmain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware/probe"
)

// TestHardwareProbe runs the subcommand on the machine running the test (no Pi in CI):
// every section is named, nothing goes to stderr, the collector never starts, exit 0.
func TestHardwareProbe(t *testing.T) {
	r := runMain(t, "hardware-probe")
	require.NoError(t, r.err, r.stderr)
	assert.False(t, r.ran, "the probe never starts the collector")
	assert.Empty(t, r.stderr)
	for _, title := range probe.Titles() {
		assert.Contains(t, r.stdout, "== "+title+"\n")
	}

	r = runMain(t, "hardware-probe", "--json", "--no-scan")
	require.NoError(t, r.err, r.stderr)
	var report probe.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &report), r.stdout)
	assert.Equal(t, "/", report.Root)
	assert.True(t, strings.HasPrefix(report.Suggested, "hardware:\n"))

	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "proc/device-tree"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "proc/device-tree/model"), []byte("Raspberry Pi 5 Model B Rev 1.0\x00"), 0o644))
	r = runMain(t, "hardware-probe", "--root", root)
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, "(every path below is read under "+root+")")
	assert.Contains(t, r.stdout, "== Board\n  Raspberry Pi 5 Model B Rev 1.0 (/proc/device-tree/model)\n")

	r = runMain(t, "hardware-probe", "--help")
	require.NoError(t, r.err)
	assert.Contains(t, r.stderr, "Usage: fieldcol-edge hardware-probe [--json] [--root DIR] [--no-scan]")
	assert.Empty(t, r.stdout)
}

func TestHardwareProbeBadCommandLine(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, `unexpected argument "extra": only --json, --root and --no-scan are accepted`},
		{[]string{"--root", "/nonexistent/probe-root"}, "--root /nonexistent/probe-root: not a directory"},
	}
	for _, tt := range tests {
		r := runMain(t, append([]string{"hardware-probe"}, tt.args...)...)
		require.Error(t, r.err, tt.args)
		assert.False(t, r.ran)
		assert.Contains(t, r.stderr, "fieldcol-edge hardware-probe: ")
		assert.Contains(t, r.stderr, tt.want)
		assert.Empty(t, r.stdout)
	}
}

func TestHardwareProbeOnlyAsFirstArgument(t *testing.T) {
	r := runMain(t, "--config", "hardware-probe")
	assert.True(t, r.ran, "a config named hardware-probe is the collector's business")
}
