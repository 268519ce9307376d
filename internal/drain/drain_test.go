package drain

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collector serves metrics as the collector's pull reader writes them, with a queue and
// an accepted counter the test moves.
type collector struct {
	mu       sync.Mutex
	queued   map[string]float64
	accepted float64
}

func (c *collector) set(exporter string, queued, accepted float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queued[exporter] = queued
	c.accepted = accepted
}

func (c *collector) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(w, "# HELP otelcol_exporter_queue_size Current size of the retry queue (in batches).")
	fmt.Fprintln(w, "# TYPE otelcol_exporter_queue_size gauge")
	for e, q := range c.queued {
		fmt.Fprintf(w, "otelcol_exporter_queue_size{data_type=\"traces\",exporter=%q} %g\n", e, q)
	}
	fmt.Fprintln(w, "# TYPE otelcol_receiver_accepted_spans_total counter")
	fmt.Fprintf(w, "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"grpc\"} %g\n", c.accepted)
	fmt.Fprintln(w, "otelcol_receiver_accepted_spans_total{receiver=\"otlp\",transport=\"http\"} 1")
}

func TestParse(t *testing.T) {
	s, err := Parse(strings.NewReader(`# TYPE otelcol_exporter_queue_size gauge
otelcol_exporter_queue_size{exporter="load_balancing/traces"} 3
otelcol_exporter_queue_size{exporter="load_balancing/logs"} 2
# TYPE otelcol_receiver_accepted_spans counter
otelcol_receiver_accepted_spans{transport="grpc"} 10
# TYPE otelcol_receiver_accepted_log_records counter
otelcol_receiver_accepted_log_records{transport="grpc"} 5
# TYPE otelcol_receiver_refused_spans counter
otelcol_receiver_refused_spans{transport="grpc"} 7
`))
	require.NoError(t, err)
	assert.Equal(t, State{Queued: 5, Accepted: 15}, s)

	_, err = Parse(strings.NewReader("# TYPE up gauge\nup 1\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "otelcol_exporter_queue_size")
	_, err = Parse(strings.NewReader("not metrics {{{"))
	require.Error(t, err)
}

// Wait returns only once every queue is empty and the receivers were quiet for Quiet.
func TestWaitUntilEmptyAndQuiet(t *testing.T) {
	c := &collector{queued: map[string]float64{"load_balancing/traces": 4, "load_balancing/logs": 0}}
	srv := httptest.NewServer(c)
	defer srv.Close()

	done := make(chan error, 1)
	var seen []State
	var mu sync.Mutex
	go func() {
		done <- Wait(context.Background(), Options{MetricsURL: srv.URL, Quiet: 300 * time.Millisecond, Interval: 20 * time.Millisecond},
			func(s State) { mu.Lock(); seen = append(seen, s); mu.Unlock() })
	}()
	// Still receiving, queue shrinking: not drained.
	for i, q := range []float64{3, 2, 1} {
		c.set("load_balancing/traces", q, float64(i+1))
		time.Sleep(100 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("returned with %g queued: %v", q, err)
		default:
		}
	}
	// Empty, but something was accepted a moment ago: still waiting for the quiet period.
	c.set("load_balancing/traces", 0, 10)
	start := time.Now()
	select {
	case err := <-done:
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "returned before the quiet period")
	case <-time.After(10 * time.Second):
		t.Fatal("not drained 10 s after the queue emptied")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, State{Queued: 0, Accepted: 11}, seen[len(seen)-1])
}

func TestWaitGivesUpAtTheDeadline(t *testing.T) {
	c := &collector{queued: map[string]float64{"otlp_grpc/traces": 7}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := Wait(ctx, Options{MetricsURL: srv.URL, Interval: 20 * time.Millisecond}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "7 queued")
}

func TestWaitRefusesAnUnusableEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := Wait(context.Background(), Options{MetricsURL: srv.URL, Interval: time.Millisecond}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "404")
}
