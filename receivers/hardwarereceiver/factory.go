package hardwarereceiver // import "github.com/fieldcol/fieldcol/receivers/hardwarereceiver"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

// NewFactory creates the factory of the hardware receiver.
func NewFactory() receiver.Factory {
	f := &factory{receivers: map[*Config]*hwReceiver{}}
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithMetrics(f.createMetrics, metadata.MetricsStability),
		receiver.WithLogs(f.createLogs, metadata.LogsStability),
		receiver.WithTraces(f.createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	scraper := scraperhelper.NewDefaultControllerConfig() // initial_delay 1s
	scraper.CollectionInterval = 10 * time.Second
	scraper.Timeout = hardware.DefaultTimeout
	return &Config{
		ControllerConfig:     scraper,
		BridgeInterval:       time.Second,
		FailAfter:            hardware.DefaultFailAfter,
		Config:               hardware.Config{Backend: hardware.BackendSim, Timeout: hardware.DefaultTimeout},
		MetricsBuilderConfig: metadata.NewDefaultMetricsBuilderConfig(),
	}
}

// factory keeps one receiver per configuration, so that the metrics, logs and traces
// pipelines that name the same receiver id share one scrape loop and one bridge (as
// core's otlp receiver does).
type factory struct {
	mu        sync.Mutex
	receivers map[*Config]*hwReceiver
}

func (f *factory) get(set receiver.Settings, cfg *Config) (*hwReceiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.receivers[cfg]; ok {
		return r, nil
	}
	r, err := newReceiver(set, cfg, func() {
		f.mu.Lock()
		delete(f.receivers, cfg)
		f.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	f.receivers[cfg] = r
	return r, nil
}

func (f *factory) createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := f.get(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setMetrics(next)
	return r.handle(), nil
}

func (f *factory) createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := f.get(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setLogs(next)
	return r.handle(), nil
}

func (f *factory) createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := f.get(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.setTraces(next)
	return r.handle(), nil
}
