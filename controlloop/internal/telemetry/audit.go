package telemetry

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewAuditLogger returns the logger of the `controlloop audit` lines: a zap core of its own,
// at info whatever the collector's level, with no sampler. The collector's logger samples
// (service.telemetry.logs.sampling: 10 identical lines a tick, then one in 100), which
// would drop most of a burst of identical refusals, exactly when an audit trail matters.
// The collector's core cannot be unwrapped from its sampler, so this one rebuilds its
// default look (console encoding, ISO 8601 times, the production keys) writing to out.
// service.telemetry.logs.{encoding,output_paths,processors} do not apply to it; the
// `controlloop.command` log records carry the same audit through the pipelines.
//
// A collector logger that logs nothing at all (zap.NewNop, as in tests) gets a silent
// audit logger: that is a deliberate choice of its builder.
func NewAuditLogger(collector *zap.Logger, out zapcore.WriteSyncer) *zap.Logger {
	if collector == nil || !collector.Core().Enabled(zapcore.FatalLevel) {
		return zap.NewNop()
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(ec), zapcore.Lock(out), zapcore.InfoLevel)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(out)))
}
