package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// Listeners are the loopback addresses (host:port) a collector listens on; the shipped
// configs read each from a FIELDCOL_* variable.
type Listeners struct {
	OTLPGRPC, OTLPHTTP, Health, Metrics, Telemetry, API string
}

// Collector is a running distribution.
type Collector struct {
	Proc *testproc.Process
	Listeners
}

// APIToken is the control loop command API's bearer token in every e2e run.
const APIToken = "e2e-api-token-5f0c1d"

// TestHMACKey stands in for the fleet's FIELDCOL_PII_HMAC_KEY (32 bytes or more).
const TestHMACKey = "FIELDCOL_PII_HMAC_KEY=e2e-key-0123456789abcdef0123456789abcdef"

// CommonEnv is what every shipped edge config needs besides its ports: the command API's
// token, and its state (latches, disk queue) in the test's own directory. A test that
// restarts a collector on the same state passes these variables again, later entries win.
func CommonEnv(t testing.TB) []string {
	state := t.TempDir()
	return []string{
		"FIELDCOL_API_TOKEN=" + APIToken,
		"FIELDCOL_LATCH_FILE=" + filepath.Join(state, "latches.json"),
		"FIELDCOL_DISKQUEUE_DIR=" + filepath.Join(state, "diskqueue"),
	}
}

// GatewayAt points the edge's disk queue at an OTLP/HTTP endpoint, as an operator does.
func GatewayAt(url string) string { return "FIELDCOL_GATEWAY_ENDPOINT=" + url }

// CollectorSpec says how to run a collector.
type CollectorSpec struct {
	// Bin is the program: a built distribution, or a script that execs one.
	Bin string
	// Configs are merged in order, later over earlier, as the collector merges --config flags.
	Configs []string
	// Env entries come after the listeners' and CommonEnv's: later entries win.
	Env []string
	// At holds the addresses that must not change, such as those of a collector restarted
	// where its clients and Prometheus know it; the empty ones are picked free at each try.
	At Listeners
	// Via runs Bin under another program (qemu-user): Via Bin --config ...
	Via string
	// Ready bounds the wait for health_check; 60 s when zero.
	Ready time.Duration
}

// StartCollector runs bin with the given configs and extra environment entries on free
// ports and waits until health_check answers.
func StartCollector(t testing.TB, bin string, configs []string, env ...string) *Collector {
	t.Helper()
	return CollectorSpec{Bin: bin, Configs: configs, Env: env}.Start(t)
}

// Start runs the collector and waits until health_check answers. The ports are picked
// inside testproc.Retry: a start that lost one to another program runs again on new ones.
// The collector is stopped when the test ends.
func (s CollectorSpec) Start(t testing.TB) *Collector {
	t.Helper()
	name, args := s.Bin, []string{}
	if s.Via != "" {
		name, args = s.Via, []string{s.Bin}
	}
	for _, cfg := range s.Configs {
		args = append(args, "--config", cfg)
	}
	ready := s.Ready
	if ready == 0 {
		ready = 60 * time.Second
	}
	c := &Collector{}
	c.Proc = testproc.Retry(t, func(ports *testproc.Ports) (*testproc.Process, error) {
		c.Listeners = s.At.filled(ports)
		_, telemetryPort, _ := strings.Cut(c.Telemetry, ":")
		env := []string{
			"FIELDCOL_OTLP_GRPC_ENDPOINT=" + c.OTLPGRPC,
			"FIELDCOL_OTLP_HTTP_ENDPOINT=" + c.OTLPHTTP,
			"FIELDCOL_HEALTH_ENDPOINT=" + c.Health,
			"FIELDCOL_METRICS_ENDPOINT=" + c.Metrics,
			"FIELDCOL_TELEMETRY_PORT=" + telemetryPort,
			"FIELDCOL_API_ENDPOINT=" + c.API,
		}
		env = append(env, CommonEnv(t)...)
		p := testproc.Start(t, name, args, append(env, s.Env...)...)
		return p, testproc.WaitHTTPErr(p, "http://"+c.Health+"/", ready)
	})
	return c
}

// filled returns l with a free address in every empty field.
func (l Listeners) filled(ports *testproc.Ports) Listeners {
	for _, a := range []*string{&l.OTLPGRPC, &l.OTLPHTTP, &l.Health, &l.Metrics, &l.Telemetry, &l.API} {
		if *a == "" {
			*a = ports.Addr()
		}
	}
	return l
}

// Stop ends the collector with SIGTERM and fails the test unless it exits 0.
func (c *Collector) Stop(t testing.TB) {
	t.Helper()
	if err := c.Proc.Stop(20 * time.Second); err != nil {
		t.Errorf("%s did not stop cleanly: %v", c.Proc.Name, err)
	}
}

// WaitHealthy waits until health_check answers again, e.g. after a SIGHUP reload, failing
// the test if the collector exits first.
func (c *Collector) WaitHealthy(t testing.TB, timeout time.Duration) {
	t.Helper()
	testproc.WaitHTTP(t, c.Proc, "http://"+c.Health+"/", timeout)
}

// Call sends a request to the control loop's command API and returns the status and the
// decoded JSON answer.
func (c *Collector) Call(t testing.TB, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.API+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var answer map[string]any
	_ = json.Unmarshal(raw, &answer)
	return resp.StatusCode, answer
}

// ScrapeSum adds up the samples of one metric on the collector's own telemetry endpoint
// whose lines contain every string in match (e.g. `exporter="otlp_http/logs"`); 0 when
// there is none. It does not fail the test, so that it can run inside a wait.
func (c *Collector) ScrapeSum(name string, match ...string) (float64, error) {
	sum, _, err := metricsSum("http://"+c.Telemetry+"/metrics", name, match...)
	return sum, err
}

// MustScrape is ScrapeSum for the test's own goroutine.
func (c *Collector) MustScrape(t testing.TB, name string, match ...string) float64 {
	t.Helper()
	v, err := c.ScrapeSum(name, match...)
	require.NoError(t, err)
	return v
}

// MetricsSum adds up the samples of name on a Prometheus text endpoint whose lines contain
// every string in match; found is false when there is no such line or the endpoint does
// not answer. It does not fail the test, so that it can run inside a wait.
func MetricsSum(url, name string, match ...string) (sum float64, found bool) {
	sum, found, err := metricsSum(url, name, match...)
	if err != nil {
		return 0, false
	}
	return sum, found
}

func metricsSum(url, name string, match ...string) (sum float64, found bool, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		// The collector's pull reader names counters without _total; accept both spellings.
		metric, _, _ := strings.Cut(line, "{")
		metric, _, _ = strings.Cut(metric, " ")
		if metric != name && metric != name+"_total" {
			continue
		}
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue lines
			}
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, false, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}

// HTTPGet returns the body of a 200 answer, failing the test otherwise.
func HTTPGet(t testing.TB, url string) string {
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
