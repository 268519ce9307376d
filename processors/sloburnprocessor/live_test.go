package sloburnprocessor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fieldcol/fieldcol/internal/promtest"
	"github.com/fieldcol/fieldcol/processors/sloburnprocessor/internal/metadata"
)

// TestLivePrometheusAgrees runs the processor on the wall clock at a steady 4x burn, serves
// its slo.events and slo.objective to a live Prometheus that loads the shipped rules, and
// checks that the server's rule groups compute the same burn rate and raise the same alert
// (ticket, not page) as the processor's slo.alert. The promtool equivalence test covers the
// window arithmetic over days; this one covers the rules as a running server evaluates them.
func TestLivePrometheusAgrees(t *testing.T) {
	cfg := ovenConfig()
	p, err := newSLOBurn(cfg, processortest.NewNopSettings(metadata.Type), new(consumertest.MetricsSink), time.Now)
	require.NoError(t, err)
	// As if the processor had watched a silent input for a month: its windows are covered,
	// like the rules' (Prometheus has no notion of coverage; it has its own tests).
	p.origin = time.Now().Add(-31 * 24 * time.Hour).UnixNano()

	var mu sync.Mutex
	var last pmetric.Metrics
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		md := p.collect(time.Now())
		if md.DataPointCount() == 0 {
			return // scraped before the first cycles arrived: no series yet
		}
		mu.Lock()
		last = md
		mu.Unlock()
		// The exposition that the prometheus exporter would produce for these points.
		body := fmt.Sprintf("slo_events_total{slo=\"oven-deadline\",outcome=\"good\"} %v\n", value(t, md, metricEvents, attrsOf("outcome", "good"))) +
			fmt.Sprintf("slo_events_total{slo=\"oven-deadline\",outcome=\"bad\"} %v\n", value(t, md, metricEvents, attrsOf("outcome", "bad"))) +
			fmt.Sprintf("slo_objective{slo=\"oven-deadline\"} %v\n", value(t, md, metricObjective, attrsOf("slo", "oven-deadline")))
		if _, err := io.WriteString(w, body); err != nil {
			t.Errorf("serving the scrape: %v", err)
		}
	}))
	defer srv.Close()

	// 2% of the cycles overrun: burn rate 4 in every window.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				md := counter("controlloop.cycles", pmetric.AggregationTemporalityDelta, time.Time{}, now, nil,
					sample{attrsOf("loop", "oven", "outcome", "ok"), 980},
					sample{attrsOf("loop", "oven", "outcome", "overrun"), 20})
				if _, err := p.processMetrics(context.Background(), md); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()

	prom := promtest.Start(t, promtest.Options{
		ScrapeTargets: []string{strings.TrimPrefix(srv.URL, "http://")},
		RuleFiles:     []string{rulesFile},
	})
	prom.WaitFor(t, `ALERTS{alertname="SLOErrorBudgetBurnTicket",alertstate="firing"}`, 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, w := range []string{"5m", "1h", "3d"} {
		got, err := prom.Query(ctx, "fieldcol_slo:burn_rate:ratio_rate"+w, time.Time{})
		require.NoError(t, err)
		require.Len(t, got, 1, w)
		assert.InDelta(t, 4, got[0].Value, 4*equivalenceTolerance, "rules, window %s", w)
	}
	pages, err := prom.Query(ctx, `ALERTS{alertname="SLOErrorBudgetBurnPage"}`, time.Time{})
	require.NoError(t, err)
	assert.Empty(t, pages, "4x does not page")

	mu.Lock()
	md := last
	mu.Unlock()
	for _, w := range []string{"5m", "1h", "3d"} {
		assert.InDelta(t, 4, burnRate(t, md, "oven-deadline", w), 4*equivalenceTolerance, "processor, window %s", w)
	}
	assert.Equal(t, 1.0, alertOf(t, md, "oven-deadline", "ticket"))
	assert.Equal(t, 0.0, alertOf(t, md, "oven-deadline", "page"))
}
