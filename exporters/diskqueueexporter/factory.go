package diskqueueexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configcompression"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadata"
)

// NewFactory creates a factory for the diskqueue exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	httpCfg := confighttp.NewDefaultClientConfig()
	httpCfg.Compression = configcompression.TypeGzip
	grpcCfg := configgrpc.NewDefaultClientConfig()
	grpcCfg.Compression = configcompression.TypeGzip
	return &Config{
		Directory:          "/var/lib/fieldcol/diskqueue",
		MaxSize:            512 << 20,
		SegmentSize:        16 << 20,
		Fsync:              FsyncBatch,
		FsyncInterval:      0,
		CheckpointInterval: time.Second,
		WhenFull:           FullBlock,
		Compression:        CompressionNone,
		Protocol:           ProtocolHTTP,
		HTTP:               httpCfg,
		GRPC:               grpcCfg,
		RetryConfig:        configretry.NewDefaultBackOffConfig(),
		NumConsumers:       1,
		SendBatchMaxBytes:  2 << 20,
		Timeout:            30 * time.Second,
	}
}

// helperOptions keep exporterhelper to its obs-report role: the disk queue is the queue and
// the retry loop, and a pipeline call must be allowed to block on when_full: block.
func helperOptions(e *diskQueueExporter) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	e := newExporter(cfg.(*Config), set, pipeline.SignalTraces)
	return exporterhelper.NewTraces(ctx, set, cfg, e.pushTraces, helperOptions(e)...)
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	e := newExporter(cfg.(*Config), set, pipeline.SignalMetrics)
	return exporterhelper.NewMetrics(ctx, set, cfg, e.pushMetrics, helperOptions(e)...)
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	e := newExporter(cfg.(*Config), set, pipeline.SignalLogs)
	return exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, helperOptions(e)...)
}
