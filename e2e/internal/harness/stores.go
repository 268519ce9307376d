package e2e

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

// toolBinary is a store built into .tools/ by make tools-stores. A test that needs a
// missing one is skipped on a developer's machine and fails under CI, where `make test`
// builds it first.
func toolBinary(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot, ".tools", name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("%s is not built (make .tools/%s): %v", p, name, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// victoriaLogs is a running VictoriaLogs, the log store.
type victoriaLogs struct {
	proc *testproc.Process
	addr string // host:port of its HTTP API
	dir  string
}

// startVictoriaLogs runs VictoriaLogs on addr (a free port when empty) with its data in dir
// (a new one when empty); starting it again with the same two is a restart.
func startVictoriaLogs(t testing.TB, addr, dir string) *victoriaLogs {
	t.Helper()
	bin := toolBinary(t, "victoria-logs")
	if addr == "" {
		addr = freeAddr(t)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	v := &victoriaLogs{addr: addr, dir: dir}
	v.proc = testproc.Start(t, bin, []string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + dir,
		"-loggerLevel=WARN",
	})
	testproc.WaitHTTP(t, v.proc, "http://"+addr+"/health", 30*time.Second)
	return v
}

// otlpLogsURL is where an OTLP/HTTP exporter sends logs.
func (v *victoriaLogs) otlpLogsURL() string {
	return "http://" + v.addr + "/insert/opentelemetry/v1/logs"
}

// query runs a LogsQL query and returns the rows, each a map of field to value.
func (v *victoriaLogs) query(ctx context.Context, logsql string) ([]map[string]string, error) {
	u := "http://" + v.addr + "/select/logsql/query?" + url.Values{"query": {logsql}}.Encode()
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

// count returns how many log records match a LogsQL filter.
func (v *victoriaLogs) count(ctx context.Context, filter string) (int, error) {
	rows, err := v.query(ctx, filter+" | stats count() as n")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("LogsQL count of %q: %d rows", filter, len(rows))
	}
	return strconv.Atoi(rows[0]["n"])
}

// jaeger is a running Jaeger v2 all-in-one with memory storage, the trace store.
type jaeger struct {
	proc     *testproc.Process
	otlpGRPC string // host:port of its OTLP/gRPC receiver
	query    string // base URL of its query API
}

// startJaeger runs Jaeger with a config that puts every listener on a loopback port: its
// OTLP receiver on otlpAddr (a free port when empty, the same one for a restart), the others
// on free ports (run without a config it would take 4317, 4318, 13133 and 16686).
func startJaeger(t testing.TB, otlpAddr string) *jaeger {
	t.Helper()
	bin := toolBinary(t, "jaeger")
	if otlpAddr == "" {
		otlpAddr = freeAddr(t)
	}
	j := &jaeger{otlpGRPC: otlpAddr}
	queryAddr, health := freeAddr(t), freeAddr(t)
	j.query = "http://" + queryAddr
	cfg := fmt.Sprintf(`
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
`, queryAddr, freeAddr(t), health, j.otlpGRPC)
	path := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	j.proc = testproc.Start(t, bin, []string{"--config", path})
	testproc.WaitHTTP(t, j.proc, "http://"+health+"/status", 60*time.Second)
	testproc.WaitHTTP(t, j.proc, j.query+"/api/services", 30*time.Second)
	return j
}

// jaegerTrace is one trace as Jaeger's /api/traces answers it.
type jaegerTrace struct {
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

// traces asks Jaeger's query API, e.g. "/api/traces/<id>" or "/api/traces?service=...".
func (j *jaeger) traces(ctx context.Context, path string) ([]jaegerTrace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.query+path, nil)
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
		Data []jaegerTrace `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("GET %s: decoding %q: %w", path, body, err)
	}
	return answer.Data, nil
}
