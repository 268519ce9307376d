package piiredactionprocessor // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor"

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/metadata"
)

// NewFactory creates the factory of the piiredaction processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

// defaultAllowKeys are identifiers that dashboards and trace joins depend on and that carry no
// personal data; digit runs in them (trace ids in decimal, versions) must never be rewritten.
var defaultAllowKeys = []string{
	"trace_id", "span_id", "parent_span_id", "trace.id", "span.id", "traceId", "spanId", "trace_flags",
	"service.name", "service.namespace", "service.version", "service.instance.id",
	"host.name", "host.id", "device.id", "telemetry.sdk.name", "telemetry.sdk.language",
	"telemetry.sdk.version", "otel.scope.name", "otel.scope.version",
}

// createDefaultConfig turns every detector on with the mask action, which needs no key; the
// shipped edge and gateway configurations switch the joinable kinds to hash.
func createDefaultConfig() component.Config {
	on := RuleConfig{Enabled: true, Action: ActionMask}
	return &Config{
		Detectors: DetectorsConfig{
			Email: on, Phone: on, IPv4: on, IPv6: on,
			CreditCard:  RuleConfig{Enabled: true, Action: ActionMask, KeepLast: 4},
			IBAN:        on,
			SSN:         on,
			JWT:         on,
			BearerToken: on,
			Credentials: on,
			Geo:         on,
			Person:      on,
		},
		AllowKeys:  append([]string(nil), defaultAllowKeys...),
		HashPrefix: "pii_",
		HashLength: 16,
		Mask:       "****",
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newPIIProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, fmt.Errorf("creating the piiredaction processor: %w", err)
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(p.shutdown))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := newPIIProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, fmt.Errorf("creating the piiredaction processor: %w", err)
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(p.shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newPIIProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, fmt.Errorf("creating the piiredaction processor: %w", err)
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithShutdown(p.shutdown))
}
