package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/e2e/internal/harness"
	"github.com/fieldcol/fieldcol/internal/hardware/probe"
)

// hardwareProbe runs `<bin> hardware-probe args...` and returns its output and exit error.
func hardwareProbe(t *testing.T, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"hardware-probe"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestHardwareProbeBinary runs the probe of the built edge as an operator runs it, on the
// test machine (a container, no Pi): it names every section, says what it did not find,
// prints no trace and exits 0; only a bad flag makes it exit 1.
func TestHardwareProbeBinary(t *testing.T) {
	bin := harness.Binary(t, "fieldcol-edge")
	stdout, stderr, err := hardwareProbe(t, bin)
	require.NoError(t, err, stderr)
	t.Log("\n" + stdout)
	assert.Empty(t, stderr)
	for _, title := range probe.Titles() {
		assert.Contains(t, stdout, "== "+title+"\n")
	}
	for _, trace := range []string{"panic", "goroutine ", ".go:"} {
		assert.NotContains(t, stdout, trace)
	}

	stdout, stderr, err = hardwareProbe(t, bin, "--json")
	require.NoError(t, err, stderr)
	var r probe.Report
	require.NoError(t, json.Unmarshal([]byte(stdout), &r))
	assert.Equal(t, "/", r.Root)

	stdout, stderr, err = hardwareProbe(t, bin, "--bogus")
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "%v", err)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, stderr, "flag provided but not defined: -bogus")
	assert.Empty(t, stdout)
}
