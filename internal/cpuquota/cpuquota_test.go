package cpuquota

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A busy loop in a group of a quarter core gets no more than a quarter of the wall time,
// and the kernel counts it as throttled. (The bound is an upper one: a loaded machine can
// give it less, never more.)
func TestQuotaHoldsABusyLoopBack(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	g, err := New(fmt.Sprintf("fieldcol-test-%d", os.Getpid()), 0.25)
	require.NoError(t, err)
	defer func() { assert.NoError(t, g.Remove()) }()

	cmd := exec.Command("sh", "-c", "while :; do :; done")
	require.NoError(t, cmd.Start())
	start := time.Now()
	require.NoError(t, g.Add(cmd.Process.Pid))
	time.Sleep(1500 * time.Millisecond)
	throttled, err := g.Throttled()
	require.NoError(t, err)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	used, wall := cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime(), time.Since(start)
	t.Logf("busy loop under %g cores: %s CPU in %s wall", g.Cores, used, wall.Round(time.Millisecond))
	// The slack covers the moment between the start and the move into the group.
	assert.LessOrEqual(t, used.Seconds(), 0.25*wall.Seconds()*1.2+0.05, "CPU time above the quota")
	assert.Positive(t, throttled, "the kernel throttled the group")
}

func TestNewRefusesBadArguments(t *testing.T) {
	_, err := New("a/b", 1)
	assert.ErrorContains(t, err, "one path element")
	_, err = New("x", 0)
	assert.ErrorContains(t, err, "positive")
}
