package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// VictoriaLogs is a running VictoriaLogs, the log store.
type VictoriaLogs struct {
	Proc *testproc.Process
	Addr string // host:port of its HTTP API
	Dir  string // its data
}

// StartVictoriaLogs runs VictoriaLogs (.tools/victoria-logs) on a free port with its data
// in a new directory.
func StartVictoriaLogs(t testing.TB) *VictoriaLogs {
	t.Helper()
	bin := Tool(t, "victoria-logs")
	v := &VictoriaLogs{Dir: t.TempDir()}
	v.Proc = testproc.Retry(t, func(ports *testproc.Ports) (*testproc.Process, error) {
		v.Addr = ports.Addr()
		p := v.start(t, bin)
		return p, testproc.WaitHTTPErr(p, "http://"+v.Addr+"/health", 30*time.Second)
	})
	return v
}

// Restart starts a stopped VictoriaLogs again on its address and data, where the
// exporters that were sending to it still send: it cannot move to a new port.
func (v *VictoriaLogs) Restart(t testing.TB) *VictoriaLogs {
	t.Helper()
	again := &VictoriaLogs{Addr: v.Addr, Dir: v.Dir}
	again.Proc = again.start(t, Tool(t, "victoria-logs"))
	testproc.WaitHTTP(t, again.Proc, "http://"+again.Addr+"/health", 30*time.Second)
	return again
}

func (v *VictoriaLogs) start(t testing.TB, bin string) *testproc.Process {
	return testproc.Start(t, bin, []string{
		"-httpListenAddr=" + v.Addr,
		"-storageDataPath=" + v.Dir,
		"-loggerLevel=WARN",
	})
}

// OTLPLogsURL is where an OTLP/HTTP exporter sends logs.
func (v *VictoriaLogs) OTLPLogsURL() string {
	return "http://" + v.Addr + "/insert/opentelemetry/v1/logs"
}

// Query runs a LogsQL query and returns the rows, each a map of field to value.
func (v *VictoriaLogs) Query(ctx context.Context, logsql string) ([]map[string]string, error) {
	u := "http://" + v.Addr + "/select/logsql/query?" + url.Values{"query": {logsql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("LogsQL %q: %w", logsql, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("LogsQL %q: %s: %s", logsql, resp.Status, body)
	}
	var rows []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		row := map[string]string{}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("LogsQL %q: row %q: %w", logsql, sc.Text(), err)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// Count returns how many log records match a LogsQL filter.
func (v *VictoriaLogs) Count(ctx context.Context, filter string) (int, error) {
	rows, err := v.Query(ctx, filter+" | stats count() as n")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("LogsQL count of %q: %d rows", filter, len(rows))
	}
	return strconv.Atoi(rows[0]["n"])
}

// Jaeger is a running Jaeger v2 all-in-one with memory storage, the trace store.
type Jaeger struct {
	Proc     *testproc.Process
	OTLPGRPC string // host:port of its OTLP/gRPC receiver
	QueryURL string // base URL of its query API
}

// StartJaeger runs Jaeger (.tools/jaeger) with a config that puts every listener on a free
// loopback port (run without a config it would take 4317, 4318, 13133 and 16686).
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	return startJaeger(t, "")
}

// Restart starts a stopped Jaeger again with its OTLP receiver on the same address, where
// the exporters that were sending to it still send; its memory storage starts empty.
func (j *Jaeger) Restart(t testing.TB) *Jaeger {
	t.Helper()
	return startJaeger(t, j.OTLPGRPC)
}

// startJaeger runs Jaeger with its OTLP receiver on otlpAddr, a free port when empty, and
// every other listener on a free port.
func startJaeger(t testing.TB, otlpAddr string) *Jaeger {
	t.Helper()
	bin := Tool(t, "jaeger")
	dir := t.TempDir()
	j := &Jaeger{}
	j.Proc = testproc.Retry(t, func(ports *testproc.Ports) (*testproc.Process, error) {
		j.OTLPGRPC = otlpAddr
		if j.OTLPGRPC == "" {
			j.OTLPGRPC = ports.Addr()
		}
		queryAddr, queryGRPC, health := ports.Addr(), ports.Addr(), ports.Addr()
		j.QueryURL = "http://" + queryAddr
		path := filepath.Join(dir, "jaeger.yaml")
		if err := os.WriteFile(path, []byte(jaegerConfig(queryAddr, queryGRPC, health, j.OTLPGRPC)), 0o600); err != nil {
			t.Fatal(err)
		}
		p := testproc.Start(t, bin, []string{"--config", path})
		if err := testproc.WaitHTTPErr(p, "http://"+health+"/status", 60*time.Second); err != nil {
			return p, err
		}
		return p, testproc.WaitHTTPErr(p, j.QueryURL+"/api/services", 30*time.Second)
	})
	return j
}

// jaegerConfig is Jaeger's config with its query API on queryHTTP and queryGRPC, its health
// check on health and its OTLP/gRPC receiver on otlp.
func jaegerConfig(queryHTTP, queryGRPC, health, otlp string) string {
	return fmt.Sprintf(`
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    # On by default: Jaeger would trace its queries to localhost:4317 (whatever listens
    # there) and hang its shutdown retrying.
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  healthcheckv2:
    use_v2: true
    http:
      endpoint: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, queryHTTP, queryGRPC, health, otlp)
}

// JaegerTrace is one trace as Jaeger's /api/traces answers it.
type JaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		Tags          []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
		Tags        []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
	} `json:"processes"`
}

// Traces asks Jaeger's query API, e.g. "/api/traces/<id>" or "/api/traces?service=...".
func (j *Jaeger) Traces(ctx context.Context, path string) ([]JaegerTrace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	var answer struct {
		Data []JaegerTrace `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("GET %s: decoding %q: %w", path, body, err)
	}
	return answer.Data, nil
}
