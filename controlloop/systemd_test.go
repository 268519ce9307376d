package controlloop

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/fieldcol/fieldcol/internal/hardware/backends"
)

// TestSystemdNotify runs the extension against a fake systemd notify socket: READY=1 once
// the pipelines are ready (with STATUS= naming the loops), WATCHDOG=1 while the loops are
// healthy, STOPPING=1 at shutdown.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")

	cfg := plantConfig(t, latchPath(t))
	cfg.Watchdog.Enabled = true
	e := newExtension(cfg, settings())
	e.registry = backends.NewRegistry(nil)
	h := &host{exts: map[component.ID]component.Component{authID: &tokenAuth{token: "s3cret"}}}
	require.NoError(t, e.Start(context.Background(), h))
	require.NoError(t, e.Ready())

	read := func() string {
		buf := make([]byte, 256)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		n, err := conn.Read(buf)
		require.NoError(t, err)
		return string(buf[:n])
	}
	assert.Regexp(t, `^READY=1\nSTATUS=control loops running: \S`, read())
	assert.Equal(t, "WATCHDOG=1", read())
	assert.Equal(t, "WATCHDOG=1", read())
	require.NoError(t, e.NotReady())
	require.NoError(t, e.Shutdown(context.Background()))
	var last string
	for last != "STOPPING=1" {
		last = read()
		require.True(t, last == "WATCHDOG=1" || last == "STOPPING=1", "unexpected %q", last)
	}
}
