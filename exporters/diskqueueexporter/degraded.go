package diskqueueexporter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/queue"
)

// errDegraded is what a consume gets while the WAL cannot be opened. It is deliberately not
// consumererror.NewPermanent: the cause (a file in the way, a read-only or full disk, a
// lock held by another process) goes away by itself or by an operator's hand, and the
// exporter then recovers without a restart. A retryable error makes the OTLP receiver answer
// 503 / UNAVAILABLE, so the edge's clients keep the batch and retry; a permanent one would
// answer 400 / INVALID_ARGUMENT and make them drop telemetry the edge could have taken a
// minute later. Either way nothing is acknowledged that is not on disk.
var errDegraded = errors.New("diskqueue is degraded: its queue directory cannot be used, so the batch was not stored; retry later")

// degradedState is what the exporter remembers while it runs without a WAL, so that it logs
// once per change of state or cause instead of once per refused batch or retry.
type degradedState struct {
	mu     sync.Mutex
	since  time.Time // zero while the queue is open
	cause  error     // the last failure to open the queue
	advice string    // what the operator should do about cause, as last logged

	refused atomic.Int64 // batches refused in this episode, for the recovery log
	// on drives the degraded gauge. It is not "no queue yet": a healthy start that repairs
	// a large backlog must not report degraded while it opens the queue.
	on atomic.Bool
}

// Reasons a batch is refused, the refused counter's reason attribute.
const (
	reasonDegraded = "degraded"
	reasonFull     = "full"
)

// countRefused counts a batch the exporter answered with a retryable error.
func (e *diskQueueExporter) countRefused(ctx context.Context, reason string) {
	e.addRefused(ctx, reason, 1)
}

// initRefused reports both refused series at 0 from the start, so that the first refusal
// is an increase a rule can see rather than a series appearing at 1.
func (e *diskQueueExporter) initRefused(ctx context.Context) {
	e.addRefused(ctx, reasonDegraded, 0)
	e.addRefused(ctx, reasonFull, 0)
}

func (e *diskQueueExporter) addRefused(ctx context.Context, reason string, n int64) {
	e.telemetry.ExporterDiskqueueRefused.Add(ctx, n,
		metric.WithAttributes(attribute.String("signal", e.signal.String()), attribute.String("reason", reason)))
}

// refuse answers a consume while degraded: counted, never acknowledged.
func (e *diskQueueExporter) refuse(ctx context.Context) error {
	e.countRefused(ctx, reasonDegraded)
	e.degraded.refused.Add(1)
	e.degraded.mu.Lock()
	cause := e.degraded.cause
	e.degraded.mu.Unlock()
	return fmt.Errorf("%w: %w", errDegraded, cause)
}

// openFailed records a failure to open the WAL: an error log when the exporter becomes
// degraded, a warning when the cause changes (the operator fixed one thing, another is in
// the way), and only a debug line for a retry that fails the same way.
func (e *diskQueueExporter) openFailed(err error) {
	d := &e.degraded
	d.mu.Lock()
	defer d.mu.Unlock()
	first := d.since.IsZero()
	adv := advice(err)
	changed := adv != d.advice
	if first {
		d.since = time.Now()
		d.on.Store(true)
	}
	d.cause, d.advice = err, adv
	fields := []zap.Field{
		zap.String("signal", e.signal.String()), zap.String("directory", e.queueDir()),
		zap.String("what_to_do", adv), zap.Error(err),
	}
	switch {
	case first:
		e.set.Logger.Error("diskqueue cannot open its queue and runs degraded: every batch is refused with a retryable error "+
			"(OTLP clients of the edge get 503/UNAVAILABLE and retry; nothing is acknowledged that is not on disk). "+
			"It retries opening the queue in the background and recovers by itself, no restart needed; the collector and the control loops keep running",
			fields...)
	case changed:
		e.set.Logger.Warn("diskqueue is still degraded, for another reason now", fields...)
	default:
		e.set.Logger.Debug("diskqueue still cannot open its queue; retrying", fields...)
	}
}

// recovered logs the end of a degraded episode.
func (e *diskQueueExporter) recovered() {
	d := &e.degraded
	d.mu.Lock()
	since := d.since
	d.since, d.cause, d.advice = time.Time{}, nil, ""
	d.on.Store(false)
	d.mu.Unlock()
	e.set.Logger.Info("diskqueue opened its queue and accepts batches again",
		zap.String("signal", e.signal.String()), zap.String("directory", e.queueDir()),
		zap.Duration("degraded_for", time.Since(since).Round(time.Millisecond)),
		zap.Int64("refused_batches", d.refused.Swap(0)))
}

// reopen retries opening the WAL with the retry_on_failure backoff until it opens or the
// exporter shuts down; then the exporter runs as if it had started normally.
func (e *diskQueueExporter) reopen(ctx context.Context) {
	defer e.wg.Done()
	bo := newBackoff(e.cfg)
	for sleep(ctx, bo.next()) {
		q, err := e.openQueue()
		if err != nil {
			e.openFailed(err)
			continue
		}
		// A shutdown racing with this finds q in e.q once wg.Wait returns and closes it.
		e.run(ctx, q)
		e.recovered()
		return
	}
}

// advice says what an operator does about a queue that cannot be opened, by cause.
func advice(err error) string {
	switch {
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EEXIST):
		return "a file is in the way of the queue directory or one of its parents: move it away, or set directory to another path"
	case errors.Is(err, syscall.EROFS):
		return "the file system is read-only (an SD card the kernel remounted after I/O errors? check dmesg): remount it read-write or replace the card"
	case errors.Is(err, os.ErrPermission):
		return "the collector's user may not write there: give it the directory (systemd StateDirectory= or chown), or set directory to a path it owns"
	case queue.IsNoSpace(err):
		return "the disk or the user's quota is full: free space on it"
	case errors.Is(err, queue.ErrLocked):
		return "another collector or exporter holds this queue: stop it, or give each its own directory"
	}
	return "check the directory and the storage under it (dmesg for I/O errors)"
}
