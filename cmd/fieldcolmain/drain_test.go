package fieldcolmain

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDrainCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE otelcol_exporter_queue_size gauge")
		fmt.Fprintln(w, `otelcol_exporter_queue_size{exporter="load_balancing/traces"} 0`)
		fmt.Fprintln(w, "# TYPE otelcol_receiver_accepted_spans counter")
		fmt.Fprintln(w, `otelcol_receiver_accepted_spans{transport="grpc"} 42`)
	}))
	defer srv.Close()
	host, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	env := map[string]string{"FIELDCOL_TELEMETRY_HOST": host, "FIELDCOL_TELEMETRY_PORT": port}

	t.Run("the metrics address comes from the collector's environment", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.NoError(t, drainMain([]string{"--quiet=0s", "--interval=10ms"}, "fieldcol-gateway", func(k string) string { return env[k] }, &stdout, &stderr))
		assert.Contains(t, stdout.String(), "drained in")
		assert.Contains(t, stdout.String(), "42 items accepted")
	})
	t.Run("bad command lines are refused", func(t *testing.T) {
		for _, args := range [][]string{{"--interval=0s"}, {"--timeout=-1s"}, {"extra"}, {"--quiet=soon"}} {
			var stdout, stderr bytes.Buffer
			assert.Error(t, drainMain(args, "fieldcol-gateway", func(k string) string { return env[k] }, &stdout, &stderr), "%v", args)
		}
	})
	t.Run("an endpoint without queues is an error", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, "# TYPE up gauge\nup 1")
		}))
		defer other.Close()
		var stdout, stderr bytes.Buffer
		err := drainMain([]string{"--metrics=" + other.URL, "--quiet=0s"}, "fieldcol-gateway", func(string) string { return "" }, &stdout, &stderr)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "otelcol_exporter_queue_size")
	})
}
