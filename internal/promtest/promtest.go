// Package promtest starts a real Prometheus (the Debian package's binary) for tests, with a
// generated config, and queries it over its HTTP API.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldcol/fieldcol/internal/testproc"
)

// Options says what the Prometheus under test scrapes and evaluates.
type Options struct {
	// ScrapeTargets are host:port pairs whose /metrics Prometheus scrapes, in one job "fieldcol".
	ScrapeTargets []string
	// ScrapeFiles are more scrape jobs by name, each reading its targets from a file_sd
	// file (YAML, [{targets: [host:port]}]) that the test may write after Prometheus started,
	// e.g. for a collector that itself needs Prometheus's address; Prometheus watches it.
	ScrapeFiles map[string]string
	// ScrapeInterval defaults to 1s.
	ScrapeInterval time.Duration
	// RuleFiles are rule files Prometheus loads (absolute, or relative to the test's directory).
	RuleFiles []string
	// EvaluationInterval defaults to 1s.
	EvaluationInterval time.Duration
	// RemoteWriteReceiver enables /api/v1/write.
	RemoteWriteReceiver bool
	// AlertmanagerURLs are Alertmanagers (http://host:port) that receive firing alerts.
	AlertmanagerURLs []string
}

// Server is a running Prometheus.
type Server struct {
	url  string
	Proc *testproc.Process
}

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Start writes a config, starts Prometheus on a free port and waits until it is ready.
// It is stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := testproc.LookPath(t, "prometheus", "Debian package prometheus")
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	if o.EvaluationInterval == 0 {
		o.EvaluationInterval = time.Second
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config(t, o)), 0o600); err != nil {
		t.Fatalf("writing the Prometheus config: %v", err)
	}
	s := &Server{}
	s.Proc = testproc.Retry(t, func(ports *testproc.Ports) (*testproc.Process, error) {
		port := ports.Port()
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--log.level=warn",
		}
		if o.RemoteWriteReceiver {
			args = append(args, "--web.enable-remote-write-receiver")
		}
		s.url = fmt.Sprintf("http://127.0.0.1:%d", port)
		p := testproc.Start(t, bin, args)
		return p, testproc.WaitHTTPErr(p, s.url+"/-/ready", 30*time.Second)
	})
	return s
}

func config(t testing.TB, o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", o.ScrapeInterval, o.EvaluationInterval)
	if len(o.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range o.RuleFiles {
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatalf("rule file %s: %v", f, err)
			}
			fmt.Fprintf(&b, "  - %q\n", abs)
		}
	}
	if len(o.AlertmanagerURLs) > 0 {
		b.WriteString("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets:\n")
		for _, u := range o.AlertmanagerURLs {
			fmt.Fprintf(&b, "            - %q\n", strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://"))
		}
	}
	if len(o.ScrapeTargets) > 0 || len(o.ScrapeFiles) > 0 {
		b.WriteString("scrape_configs:\n")
	}
	if len(o.ScrapeTargets) > 0 {
		b.WriteString("  - job_name: fieldcol\n    static_configs:\n      - targets:\n")
		for _, target := range o.ScrapeTargets {
			fmt.Fprintf(&b, "          - %q\n", target)
		}
	}
	jobs := make([]string, 0, len(o.ScrapeFiles))
	for job := range o.ScrapeFiles {
		jobs = append(jobs, job)
	}
	sort.Strings(jobs)
	for _, job := range jobs {
		abs, err := filepath.Abs(o.ScrapeFiles[job])
		if err != nil {
			t.Fatalf("scrape file %s: %v", o.ScrapeFiles[job], err)
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    file_sd_configs:\n      - files: [%q]\n        refresh_interval: 1s\n", job, abs)
	}
	return b.String()
}

// URL is Prometheus's base URL, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.url }

// Query evaluates expr as an instant query at the given time (now when at is zero). It
// returns the samples of a vector result, or one unlabelled sample of a scalar result.
func (s *Server) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	q := url.Values{"query": {expr}}
	if !at.IsZero() {
		q.Set("time", strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/v1/query?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying %q: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %q: %w", expr, err)
	}
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("decoding the answer to %q (%s): %w", expr, resp.Status, err)
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("query %q failed: %s", expr, answer.Error)
	}
	switch answer.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(answer.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("decoding the vector of %q: %w", expr, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, v := range vec {
			f, err := parseValue(v.Value[1])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", expr, err)
			}
			out = append(out, Sample{Labels: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(answer.Data.Result, &sc); err != nil {
			return nil, fmt.Errorf("decoding the scalar of %q: %w", expr, err)
		}
		f, err := parseValue(sc[1])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", expr, err)
		}
		return []Sample{{Labels: map[string]string{}, Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %q is not supported here", expr, answer.Data.ResultType)
	}
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// WaitFor polls expr until it returns at least one sample, and returns them; the test fails
// when that has not happened within timeout.
func (s *Server) WaitFor(t testing.TB, expr string, timeout time.Duration) []Sample {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		samples, err := s.Query(ctx, expr, time.Time{})
		cancel()
		if err == nil && len(samples) > 0 {
			return samples
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("Prometheus returned nothing for %q within %s (last error: %v)", expr, timeout, lastErr)
	return nil
}

// Value returns the value of the one sample expr evaluates to now, or NaN when the query
// fails or does not give exactly one sample; it suits assert.Eventually conditions.
func (s *Server) Value(expr string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	samples, err := s.Query(ctx, expr, time.Time{})
	if err != nil || len(samples) != 1 {
		return math.NaN()
	}
	return samples[0].Value
}
