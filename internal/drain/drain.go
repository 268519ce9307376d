// Package drain waits until a collector that no longer receives new data has handed on
// what it holds: its exporters' queues are empty and its receivers accepted nothing for a
// quiet period (for a tail sampler, longer than decision_wait, so that every trace it held
// was decided and exported). It reads only the collector's own Prometheus metrics, so a
// Kubernetes preStop hook can run it in an image without a shell.
package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Options of Wait.
type Options struct {
	// MetricsURL is the collector's own metrics endpoint (its pull reader).
	MetricsURL string
	// Quiet is how long the receivers must accept nothing before the collector counts as drained.
	Quiet time.Duration
	// Interval between two scrapes.
	Interval time.Duration
	// Client scrapes MetricsURL; http.DefaultClient when nil.
	Client *http.Client
}

// State is what one scrape says.
type State struct {
	// Queued is the sum of otelcol_exporter_queue_size over every exporter.
	Queued float64
	// Accepted is the sum of every otelcol_receiver_accepted_* counter.
	Accepted float64
}

// Wait returns nil once the collector is drained, or the context's error with the last
// state seen. progress, when not nil, is called after each scrape.
func Wait(ctx context.Context, o Options, progress func(State)) error {
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	var last State
	var lastErr error
	lastChange := time.Now()
	first := true
	for {
		s, err := scrape(ctx, o.Client, o.MetricsURL)
		switch {
		case err != nil && first:
			// A wrong URL or a collector without queues: nothing to wait for.
			return err
		case err != nil:
			// One failed scrape is not a verdict: keep polling until the deadline.
			lastErr = err
		default:
			if progress != nil {
				progress(s)
			}
			if first || s.Accepted != last.Accepted {
				lastChange = time.Now()
			}
			last, first, lastErr = s, false, nil
			if s.Queued == 0 && time.Since(lastChange) >= o.Quiet {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("not drained (%g queued, receivers last accepted data %s ago): %w",
				last.Queued, time.Since(lastChange).Round(time.Second), ctx.Err()), lastErr)
		case <-time.After(o.Interval):
		}
	}
}

func scrape(ctx context.Context, c *http.Client, url string) (State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return State{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return State{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return State{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads a State from the Prometheus text exposition of a collector's own metrics.
func Parse(r io.Reader) (State, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return State{}, fmt.Errorf("reading the collector's metrics: %w", err)
	}
	var s State
	found := false
	for name, f := range families {
		switch {
		case name == "otelcol_exporter_queue_size":
			s.Queued += sum(f)
			found = true
		case strings.HasPrefix(name, "otelcol_receiver_accepted_"):
			s.Accepted += sum(f)
		}
	}
	if !found {
		return State{}, errors.New("no otelcol_exporter_queue_size in the collector's metrics: is this a collector with queued exporters, at metrics level normal or higher?")
	}
	return s, nil
}

func sum(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}
