package telemetry

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// lockedBuffer is a WriteSyncer for the audit logger under test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Sync() error { return nil }

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sampledLike is a logger sampled as the collector's default service.telemetry.logs.sampling
// is (10 identical lines a 10 s tick, then one in 100).
func sampledLike(level zapcore.Level) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return zap.New(zapcore.NewSamplerWithOptions(core, 10*time.Second, 10, 100)), logs
}

func TestAuditLinesAreNotSampled(t *testing.T) {
	const burst = 1000
	collector, collected := sampledLike(zap.InfoLevel)
	out := &lockedBuffer{}
	tel, err := New(nil, Settings{ServiceName: "x", Logger: collector, AuditLogger: NewAuditLogger(collector, out), MaxLogRecords: 10, MaxSpans: 10})
	require.NoError(t, err)
	now := time.Now()
	rec := CommandRecord{Command: "UNKNOWN", Result: "unauthorized", Error: "missing or wrong bearer token", Who: "anonymous", RemoteAddr: "10.0.0.9:4242", Start: now, End: now}
	for range burst {
		tel.RecordCommand(rec)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, burst, "every audit line of the burst is written")
	for _, l := range lines[:3] {
		assert.Contains(t, l, "\tinfo\tcontrolloop audit\t", "the collector's default console look")
		assert.Contains(t, l, `"result": "unauthorized"`)
		assert.Contains(t, l, `"remote_addr": "10.0.0.9:4242"`)
	}
	assert.Zero(t, collected.FilterMessage("controlloop audit").Len(), "the audit line does not go through the sampled logger twice")

	// The same burst through the collector's sampled logger loses most of it.
	for range burst {
		collector.Info("controlloop audit", zap.String("result", "unauthorized"))
	}
	assert.Equal(t, 10+(burst-10)/100, collected.FilterMessage("controlloop audit").Len())
}

func TestAuditLoggerIgnoresTheCollectorLevel(t *testing.T) {
	collector, _ := sampledLike(zap.WarnLevel)
	out := &lockedBuffer{}
	NewAuditLogger(collector, out).Info("controlloop audit")
	assert.Contains(t, out.String(), "controlloop audit")

	out = &lockedBuffer{}
	NewAuditLogger(zap.NewNop(), out).Info("controlloop audit")
	assert.Empty(t, out.String(), "a logger that logs nothing keeps the audit silent too")
}
