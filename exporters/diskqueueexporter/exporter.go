package diskqueueexporter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pipeline"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/metadata"
	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/otlpsend"
	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/queue"
)

// diskQueueExporter is one signal's queue plus the senders that drain it.
type diskQueueExporter struct {
	cfg    *Config
	set    exporter.Settings
	signal pipeline.Signal

	// q is nil while the exporter is degraded: the WAL could not be opened (see degraded.go).
	q         atomic.Pointer[queue.Queue]
	sender    otlpsend.Sender
	telemetry *metadata.TelemetryBuilder
	signalSet metric.MeasurementOption
	degraded  degradedState
	wear      *wearView

	cancel      context.CancelFunc
	wg          sync.WaitGroup
	lastSuccess atomic.Int64 // unix nanoseconds
}

func newExporter(cfg *Config, set exporter.Settings, signal pipeline.Signal) *diskQueueExporter {
	return &diskQueueExporter{
		cfg:       cfg,
		set:       set,
		signal:    signal,
		signalSet: metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", signal.String()))),
		wear:      newWearView(wearRoots()),
	}
}

// queueDir keeps exporters and signals apart: two diskqueue exporters (or the three signals
// of one) never share a WAL.
func (e *diskQueueExporter) queueDir() string {
	id := strings.NewReplacer("/", "_", "\\", "_", ":", "_").Replace(e.set.ID.String())
	return filepath.Join(e.cfg.Directory, id, e.signal.String())
}

// start never fails because of the queue directory or the disk: on the edge the collector
// also runs the control loops, which must not stop for telemetry. A WAL that cannot be
// opened leaves the exporter degraded (see degraded.go) until a background retry opens it.
func (e *diskQueueExporter) start(ctx context.Context, host component.Host) error {
	tb, err := metadata.NewTelemetryBuilder(e.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("creating the diskqueue telemetry: %w", err)
	}
	e.telemetry = tb
	if err := errors.Join(e.registerGauges(), e.registerWear()); err != nil {
		return errors.Join(err, e.closeQueue())
	}
	e.initRefused(ctx)
	if e.cfg.endpoint() == "" {
		e.set.Logger.Warn("diskqueue has no endpoint: records are kept on disk (bounded by max_size and when_full) and forwarded after a restart with an endpoint",
			zap.String("signal", e.signal.String()), zap.String("directory", e.queueDir()))
	} else {
		userAgent := fmt.Sprintf("%s/%s (%s/%s)", e.set.BuildInfo.Description, e.set.BuildInfo.Version, runtime.GOOS, runtime.GOARCH)
		signal := otlpsend.Signal(e.signal.String())
		if e.cfg.Protocol == ProtocolGRPC {
			e.sender, err = otlpsend.NewGRPC(ctx, &e.cfg.GRPC, signal, host, e.set.TelemetrySettings, userAgent)
		} else {
			e.sender, err = otlpsend.NewHTTP(ctx, &e.cfg.HTTP, signal, host, e.set.TelemetrySettings, userAgent)
		}
		if err != nil {
			return errors.Join(err, e.closeQueue())
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	q, err := e.openQueue()
	if err != nil {
		e.openFailed(err)
		e.wg.Add(1)
		go e.reopen(runCtx)
		return nil
	}
	e.run(runCtx, q)
	return nil
}

// openQueue opens (creating if needed) this exporter's WAL.
func (e *diskQueueExporter) openQueue() (*queue.Queue, error) {
	// Validate already refused any other value, so these cannot fail here.
	syncPolicy, fullPolicy, compression := fsyncModes[e.cfg.Fsync], fullModes[e.cfg.WhenFull], compressions[e.cfg.Compression]
	q, err := queue.Open(queue.Config{
		Dir:                e.queueDir(),
		SegmentSize:        e.cfg.SegmentSize,
		MaxSize:            e.cfg.MaxSize,
		Sync:               syncPolicy,
		SyncInterval:       e.cfg.FsyncInterval,
		CheckpointInterval: e.cfg.CheckpointInterval,
		WhenFull:           fullPolicy,
		MaxAge:             e.cfg.MaxAge,
		Compression:        compression,
		Logger:             e.set.Logger,
		Events:             (*queueEvents)(e),
	})
	if err != nil {
		return nil, fmt.Errorf("opening the disk queue in directory %s: %w", e.queueDir(), err)
	}
	return q, nil
}

// run makes q the exporter's queue and starts draining it. From here on every consume is
// acknowledged only once it is on disk in q.
func (e *diskQueueExporter) run(ctx context.Context, q *queue.Queue) {
	e.q.Store(q)
	if e.sender == nil {
		return
	}
	for range e.cfg.NumConsumers {
		e.wg.Add(1)
		go e.consume(ctx, q)
	}
}

// registerGauges reports the queue's gauges while it is open; a degraded exporter has no
// queue to describe and reports only degraded (1) and the last success.
func (e *diskQueueExporter) registerGauges() error {
	return errors.Join(
		e.telemetry.RegisterExporterDiskqueueSizeCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				o.Observe(q.Stats().Size, e.signalObserve())
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueLimitCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				o.Observe(q.Stats().Limit, e.signalObserve())
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueFsFreeCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				if free := q.Stats().FSFree; free >= 0 {
					o.Observe(free, e.signalObserve())
				}
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueRecordsCallback(func(_ context.Context, o metric.Int64Observer) error {
			if q := e.q.Load(); q != nil {
				o.Observe(q.Stats().Records, e.signalObserve())
			}
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueOldestAgeCallback(func(_ context.Context, o metric.Float64Observer) error {
			q := e.q.Load()
			if q == nil {
				return nil
			}
			age := 0.0
			if st := q.Stats(); !st.Oldest.IsZero() {
				age = max(0, time.Since(st.Oldest).Seconds())
			}
			o.Observe(age, e.signalObserve())
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueDegradedCallback(func(_ context.Context, o metric.Int64Observer) error {
			var v int64
			if e.degraded.on.Load() {
				v = 1
			}
			o.Observe(v, e.signalObserve())
			return nil
		}),
		e.telemetry.RegisterExporterDiskqueueSendLastSuccessCallback(func(_ context.Context, o metric.Float64Observer) error {
			o.Observe(float64(e.lastSuccess.Load())/1e9, e.signalObserve())
			return nil
		}),
	)
}

func (e *diskQueueExporter) signalObserve() metric.ObserveOption {
	return metric.WithAttributes(attribute.String("signal", e.signal.String()))
}

func (e *diskQueueExporter) shutdown(context.Context) error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	var errs []error
	if e.sender != nil {
		errs = append(errs, e.sender.Close())
	}
	errs = append(errs, e.closeQueue())
	return errors.Join(errs...)
}

func (e *diskQueueExporter) closeQueue() error {
	var err error
	if q := e.q.Load(); q != nil {
		err = q.Close()
	}
	if e.telemetry != nil {
		e.telemetry.Shutdown()
	}
	return err
}

func (e *diskQueueExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return e.enqueue(ctx, body)
}

func (e *diskQueueExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return e.enqueue(ctx, body)
}

func (e *diskQueueExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	return e.enqueue(ctx, body)
}

// enqueue returns nil only once the batch is durable per the fsync policy, which is what
// makes an upstream acknowledgement trustworthy. A batch the queue did not keep gets a
// retryable error, counted as refused: the sender keeps it and retries (OTLP clients get
// 503 / UNAVAILABLE).
func (e *diskQueueExporter) enqueue(ctx context.Context, body []byte) error {
	q := e.q.Load()
	if q == nil {
		return e.refuse(ctx)
	}
	err := q.Append(ctx, body)
	switch {
	case err == nil:
		e.telemetry.ExporterDiskqueueEnqueued.Add(ctx, 1, e.signalSet)
		return nil
	case errors.Is(err, queue.ErrFull):
		e.countRefused(ctx, reasonFull)
		return err
	case errors.Is(err, queue.ErrTooLarge):
		return consumererror.NewPermanent(err)
	default:
		return err
	}
}

// consume drains the queue: read a batch, merge its records into one export request, send
// it until the receiver takes it (or rejects it for good), then acknowledge it.
func (e *diskQueueExporter) consume(ctx context.Context, q *queue.Queue) {
	defer e.wg.Done()
	bo := newBackoff(e.cfg)
	for {
		b, err := q.Read(ctx, e.cfg.SendBatchMaxBytes)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) {
				return
			}
			e.set.Logger.Warn("diskqueue could not read from the queue; retrying", zap.Error(err))
			if !sleep(ctx, bo.next()) {
				return
			}
			continue
		}
		if !e.deliver(ctx, q, b, bo) {
			return
		}
	}
}

// outcome of sending one request.
type outcome int

const (
	outcomeSent outcome = iota
	outcomeRejected
	outcomeExpired
	outcomeStopped // the exporter is shutting down
)

// deliver sends one batch and acknowledges it. It returns false when the exporter is
// shutting down, leaving the batch unacknowledged so it is sent again after the restart.
func (e *diskQueueExporter) deliver(ctx context.Context, q *queue.Queue, b *queue.Batch, bo *backoff) bool {
	// OTLP export requests have only repeated fields at the top level, so concatenated
	// encodings decode as one request holding all of them: the batch body is the request.
	res := e.send(ctx, b.Body, b.Newest, bo)
	if res == outcomeRejected && len(b.Records) > 1 {
		// The receiver refuses a merged request as a whole; resend record by record so
		// that only the records it refuses are dropped, not their neighbours.
		for _, r := range b.Records {
			res = e.send(ctx, r, b.Newest, bo)
			if res == outcomeStopped {
				return false
			}
			e.count(res, 1)
		}
		q.Ack(b)
		return true
	}
	if res == outcomeStopped {
		return false
	}
	e.count(res, int64(len(b.Records)))
	q.Ack(b)
	return true
}

func (e *diskQueueExporter) count(res outcome, n int64) {
	switch res {
	case outcomeSent:
		e.telemetry.ExporterDiskqueueSent.Add(context.Background(), n, e.signalSet)
		e.lastSuccess.Store(time.Now().UnixNano())
	case outcomeRejected:
		e.Dropped(queue.Reason("rejected"), n)
	case outcomeExpired:
		e.Dropped(queue.ReasonExpired, n)
	}
}

// send retries one request until it is accepted, refused for good, older than max_age, or
// the exporter stops.
func (e *diskQueueExporter) send(ctx context.Context, body []byte, newest time.Time, bo *backoff) outcome {
	bo.reset()
	for attempt := 0; ; attempt++ {
		sendCtx, cancel := ctx, context.CancelFunc(func() {})
		if e.cfg.Timeout > 0 {
			sendCtx, cancel = context.WithTimeout(ctx, e.cfg.Timeout)
		}
		err := e.sender.Send(sendCtx, body)
		cancel()
		switch {
		case err == nil:
			return outcomeSent
		case otlpsend.IsRejected(err):
			e.set.Logger.Error("diskqueue request rejected by the receiver; dropping it", zap.Int("bytes", len(body)), zap.Error(err))
			return outcomeRejected
		case ctx.Err() != nil:
			return outcomeStopped
		case e.cfg.MaxAge > 0 && !newest.IsZero() && time.Since(newest) > e.cfg.MaxAge:
			e.set.Logger.Warn("diskqueue records expired while retrying; dropping them", zap.Error(err))
			return outcomeExpired
		}
		wait := max(bo.next(), otlpsend.Throttle(err))
		// A request's first failure is a warning, so that an operator sees why nothing
		// leaves (an unknown certificate authority, a wrong token, a gateway down); its
		// retries are debug, since the request stays at the head until it goes through.
		log := e.set.Logger.Debug
		if attempt == 0 {
			log = e.set.Logger.Warn
		}
		log("diskqueue send failed; retrying", zap.Duration("wait", wait), zap.Error(err))
		if !sleep(ctx, wait) {
			return outcomeStopped
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is exponential with jitter per retry_on_failure; it never gives up (a durable
// queue keeps retrying until max_age), so max_elapsed_time is not used. With retry disabled
// the wait stays at initial_interval.
type backoff struct {
	initial, maxWait   time.Duration
	multiplier, jitter float64
	grow               bool
	cur                time.Duration
}

func newBackoff(cfg *Config) *backoff {
	r := cfg.RetryConfig
	b := &backoff{initial: r.InitialInterval, maxWait: r.MaxInterval, multiplier: r.Multiplier, jitter: r.RandomizationFactor, grow: r.Enabled}
	if b.initial <= 0 {
		b.initial = time.Second
	}
	if b.maxWait < b.initial {
		b.maxWait = b.initial
	}
	if b.multiplier < 1 {
		b.multiplier = 1
	}
	b.reset()
	return b
}

func (b *backoff) reset() { b.cur = b.initial }

func (b *backoff) next() time.Duration {
	d := b.cur
	if b.grow {
		b.cur = min(time.Duration(float64(b.cur)*b.multiplier), b.maxWait)
	}
	if b.jitter > 0 {
		delta := b.jitter * float64(d)
		d = time.Duration(float64(d) - delta + rand.Float64()*2*delta) //nolint:gosec // jitter needs no crypto
	}
	return max(d, time.Millisecond)
}

// queueEvents turns the queue's events into the contract's telemetry.
type queueEvents diskQueueExporter

func (q *queueEvents) Dropped(reason queue.Reason, records int64) {
	(*diskQueueExporter)(q).Dropped(reason, records)
}

func (q *queueEvents) WriteFailed(errorType string) {
	q.telemetry.ExporterDiskqueueWriteErrors.Add(context.Background(), 1,
		metric.WithAttributes(attribute.String("error.type", errorType)))
}

func (q *queueEvents) Synced(d time.Duration) {
	q.telemetry.ExporterDiskqueueFsyncDuration.Record(context.Background(), d.Seconds())
}

// Dropped counts records dropped for reason.
func (e *diskQueueExporter) Dropped(reason queue.Reason, records int64) {
	e.telemetry.ExporterDiskqueueDropped.Add(context.Background(), records,
		metric.WithAttributes(attribute.String("signal", e.signal.String()), attribute.String("reason", string(reason))))
}
