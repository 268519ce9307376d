package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// collector is a running distribution with its listeners on free loopback ports.
type collector struct {
	proc *testproc.Process

	otlpGRPC, otlpHTTP, health, metrics, telemetry, api string // host:port
}

// apiToken is the control loop command API's bearer token in every e2e run.
const apiToken = "e2e-api-token-5f0c1d"

// commonEnv is what every shipped edge config needs besides its ports: the command API's
// token, and its state (latches, disk queue) in the test's own directory. A test that
// restarts a collector on the same state passes these variables again, later entries win.
func commonEnv(t testing.TB) []string {
	state := t.TempDir()
	return []string{
		"FIELDCOL_API_TOKEN=" + apiToken,
		"FIELDCOL_LATCH_FILE=" + filepath.Join(state, "latches.json"),
		"FIELDCOL_DISKQUEUE_DIR=" + filepath.Join(state, "diskqueue"),
	}
}

// startCollector runs bin with the given configs (later ones merge over earlier ones, as
// the collector merges several --config flags) and extra environment entries, and waits
// until health_check answers. The shipped configs read their listen addresses from the
// FIELDCOL_* variables set here.
func startCollector(t testing.TB, bin string, configs []string, env ...string) *collector {
	t.Helper()
	args := make([]string, 0, 2*len(configs))
	for _, cfg := range configs {
		args = append(args, "--config", cfg)
	}
	c := &collector{}
	c.proc = testproc.Retry(t, func() (*testproc.Process, error) {
		*c = collector{
			otlpGRPC:  freeAddr(t),
			otlpHTTP:  freeAddr(t),
			health:    freeAddr(t),
			metrics:   freeAddr(t),
			telemetry: freeAddr(t),
			api:       freeAddr(t),
		}
		_, telemetryPort, _ := strings.Cut(c.telemetry, ":")
		base := []string{
			"FIELDCOL_OTLP_GRPC_ENDPOINT=" + c.otlpGRPC,
			"FIELDCOL_OTLP_HTTP_ENDPOINT=" + c.otlpHTTP,
			"FIELDCOL_HEALTH_ENDPOINT=" + c.health,
			"FIELDCOL_METRICS_ENDPOINT=" + c.metrics,
			"FIELDCOL_TELEMETRY_PORT=" + telemetryPort,
			"FIELDCOL_API_ENDPOINT=" + c.api,
		}
		base = append(base, commonEnv(t)...)
		p := testproc.Start(t, bin, args, append(base, env...)...)
		return p, testproc.WaitHTTPErr(p, "http://"+c.health+"/", 60*time.Second)
	})
	return c
}

// stop ends the collector with SIGTERM and fails the test unless it exits 0.
func (c *collector) stop(t testing.TB) {
	t.Helper()
	if err := c.proc.Stop(20 * time.Second); err != nil {
		t.Errorf("%s did not stop cleanly: %v", c.proc.Name, err)
	}
}

func freeAddr(t testing.TB) string {
	return testproc.FreeAddr(t)
}

// overlay writes a config fragment to merge over a shipped config and returns its path.
func overlay(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "overlay.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpGet returns the body of a 200 answer, failing the test otherwise.
func httpGet(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body)
}
