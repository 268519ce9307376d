package hardwarereceiver // import "github.com/fieldcol/fieldcol/receivers/hardwarereceiver"

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/loopbridge"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/devread"
	"github.com/fieldcol/fieldcol/receivers/hardwarereceiver/internal/metadata"
)

// transport is the obsreport transport of the receiver: it reads devices, not a network.
const transport = "hardware"

// hwReceiver is one hardware receiver, shared by the metrics, logs and traces pipelines
// that name it.
type hwReceiver struct {
	set        receiver.Settings
	cfg        *Config
	onShutdown func()
	obs        *receiverhelper.ObsReport
	tb         *metadata.TelemetryBuilder
	mb         *metadata.MetricsBuilder

	metrics consumer.Metrics
	logs    consumer.Logs
	traces  consumer.Traces

	startOnce    sync.Once
	shutdownOnce sync.Once
	startErr     error

	// registry is the receiver's own, used unless controlloop names an extension, whose
	// registry the receiver then shares.
	registry *hardware.Registry
	session  *hardware.Session
	reader   *devread.Reader
	bridge   loopbridge.Source
	skipped  []string // devices a control loop owns
	cancel   context.CancelFunc
	done     chan struct{}
}

func newReceiver(set receiver.Settings, cfg *Config, onShutdown func()) (*hwReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: transport, ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &hwReceiver{
		set:        set,
		cfg:        cfg,
		onShutdown: onShutdown,
		obs:        obs,
		tb:         tb,
		mb:         metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, set),
		registry:   backends.NewRegistry(nil),
	}, nil
}

func (r *hwReceiver) setMetrics(c consumer.Metrics) { r.metrics = c }
func (r *hwReceiver) setLogs(c consumer.Logs)       { r.logs = c }
func (r *hwReceiver) setTraces(c consumer.Traces)   { r.traces = c }

// handle is what the factory hands to each pipeline: Start and Shutdown run once however
// many pipelines share the receiver.
func (r *hwReceiver) handle() *handle { return &handle{r: r} }

type handle struct{ r *hwReceiver }

func (h *handle) Start(ctx context.Context, host component.Host) error {
	h.r.startOnce.Do(func() { h.r.startErr = h.r.start(ctx, host) })
	return h.r.startErr
}

func (h *handle) Shutdown(ctx context.Context) error {
	var err error
	h.r.shutdownOnce.Do(func() { err = h.r.shutdown(ctx) })
	return err
}

func (r *hwReceiver) start(_ context.Context, host component.Host) error {
	if r.cfg.ControlLoop != nil {
		src, err := findSource(host, *r.cfg.ControlLoop)
		if err != nil {
			return err
		}
		r.bridge = src
	} else {
		if r.logs != nil || r.traces != nil {
			r.set.Logger.Warn("the hardware receiver is in a logs or traces pipeline without `controlloop`: it has no logs or traces to send")
		}
		if ids := unnamedLoops(host); len(ids) > 0 {
			r.set.Logger.Warn("a controlloop extension runs but `controlloop` does not name it: this receiver opens its devices on a hardware registry of its own, with a sim plant of its own, and on periph its bus transfers are not serialized with the loops'; set controlloop to share the extension's",
				zap.Strings("extensions", ids))
		}
	}
	hwCfg := r.cfg.Config
	hwCfg.Timeout = r.cfg.ControllerConfig.Timeout
	hwCfg.Devices = make([]hardware.DeviceConfig, 0, len(r.cfg.Devices))
	for _, d := range r.cfg.Devices {
		if r.bridge != nil && r.bridge.OwnsDevice(d.Name) {
			r.skipped = append(r.skipped, d.Name)
			continue
		}
		hwCfg.Devices = append(hwCfg.Devices, d)
	}
	if len(r.skipped) > 0 {
		r.set.Logger.Info("devices owned by a control loop are reported by the loop, not read here",
			zap.Strings("devices", r.skipped))
	}
	registry := r.registry
	if r.bridge != nil {
		registry = r.bridge.HardwareRegistry()
	}
	session, err := registry.Open(hwCfg, hardware.Settings{Logger: r.set.Logger})
	if err != nil {
		return fmt.Errorf("hardware receiver: %w", err)
	}
	r.session = session
	r.reader = devread.New(session.Devices(), r.cfg.FailAfter)
	r.reader.Start()
	r.mb.Reset(metadata.WithStartTime(pcommon.NewTimestampFromTime(time.Now())))

	loopCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.loop(loopCtx)
	return nil
}

// findSource resolves the controlloop key to the extension's loopbridge.Source.
func findSource(host component.Host, id component.ID) (loopbridge.Source, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("controlloop: extension %q is not running; add it to service.extensions", id)
	}
	src, ok := ext.(loopbridge.Source)
	if !ok {
		return nil, fmt.Errorf("controlloop: extension %q is a %T, not a controlloop extension (it does not implement loopbridge.Source)", id, ext)
	}
	return src, nil
}

// unnamedLoops lists the controlloop extensions running in host, for a receiver that names
// none of them.
func unnamedLoops(host component.Host) []string {
	var ids []string
	for id, ext := range host.GetExtensions() {
		if _, ok := ext.(loopbridge.Source); ok {
			ids = append(ids, id.String())
		}
	}
	sort.Strings(ids)
	return ids
}

// loop scrapes every collection_interval (after initial_delay) and forwards the control
// loop's events and spans every bridge_interval, so an alarm reaches the pipeline within
// about a second whatever the scrape interval. On shutdown it forwards what is left.
func (r *hwReceiver) loop(ctx context.Context) {
	defer close(r.done)
	first := time.NewTimer(r.cfg.InitialDelay)
	defer first.Stop()
	var scrapeC, drainC <-chan time.Time
	if r.bridge != nil && (r.logs != nil || r.traces != nil) {
		drain := time.NewTicker(r.cfg.BridgeInterval)
		defer drain.Stop()
		drainC = drain.C
	}
	for {
		select {
		case <-ctx.Done():
			// The pipelines still run while receivers shut down: hand them the last events.
			r.drain(context.Background())
			return
		case <-first.C:
			tick := time.NewTicker(r.cfg.CollectionInterval)
			defer tick.Stop()
			scrapeC = tick.C
			r.scrape(ctx)
		case <-scrapeC:
			r.scrape(ctx)
		case <-drainC:
			r.drain(ctx)
		}
	}
}

// scrape reads every device, appends the control loop's metrics and sends them.
func (r *hwReceiver) scrape(ctx context.Context) {
	if r.metrics == nil {
		return
	}
	began := time.Now()
	r.scrapeMetrics(ctx)
	r.tb.ReceiverHardwareScrapeDuration.Record(ctx, time.Since(began).Seconds())
}

// drain forwards the control loop's buffered events and spans.
func (r *hwReceiver) drain(ctx context.Context) {
	if r.bridge == nil {
		return
	}
	if r.logs != nil {
		ld := plog.NewLogs()
		if n := r.bridge.DrainLogs(ld); n > 0 {
			octx := r.obs.StartLogsOp(ctx)
			err := r.logs.ConsumeLogs(octx, ld)
			r.obs.EndLogsOp(octx, transport, n, err)
		}
	}
	if r.traces != nil {
		td := ptrace.NewTraces()
		if n := r.bridge.DrainTraces(td); n > 0 {
			octx := r.obs.StartTracesOp(ctx)
			err := r.traces.ConsumeTraces(octx, td)
			r.obs.EndTracesOp(octx, transport, n, err)
		}
	}
}

func (r *hwReceiver) scrapeMetrics(ctx context.Context) {
	results := r.reader.Read(ctx)
	now := pcommon.NewTimestampFromTime(time.Now())
	for i := range results {
		record(r.mb, now, &results[i])
	}
	md := r.mb.Emit()
	if r.bridge != nil {
		if err := r.bridge.CollectMetrics(md); err != nil {
			r.set.Logger.Warn("collecting the control loop's metrics failed", zap.Error(err))
		}
	}
	if md.DataPointCount() == 0 {
		return
	}
	octx := r.obs.StartMetricsOp(ctx)
	err := r.metrics.ConsumeMetrics(octx, md)
	r.obs.EndMetricsOp(octx, transport, md.DataPointCount(), err)
}

// record adds one device's data points.
func record(mb *metadata.MetricsBuilder, now pcommon.Timestamp, res *devread.Result) {
	id, name := res.Info.ID, res.Info.Name
	switch res.Role {
	case hardware.RoleTemperatureInput:
		if res.HasValue {
			mb.RecordHwTemperatureDataPoint(now, res.Value, id, name)
		}
	case hardware.RoleAnalogInput:
		if res.HasValue {
			mb.RecordHwVoltageDataPoint(now, res.Value, id, name)
		}
	case hardware.RoleDigitalInput:
		if res.Err == nil {
			mb.RecordHwGpioLevelDataPoint(now, boolInt(res.Level), id, name)
		}
		mb.RecordHwGpioEdgesDataPoint(now, int64(res.Edges), id, name)
	case hardware.RoleDigitalOutput:
		if res.Err == nil {
			mb.RecordHwGpioLevelDataPoint(now, boolInt(res.Level), id, name)
		}
	}
	if !res.Reads {
		return
	}
	typ := metadata.MapAttributeHwType[res.Info.BusType]
	for k, et := range devread.ErrorTypes {
		mb.RecordHwErrorsDataPoint(now, int64(res.Errors[k]), id, typ, metadata.MapAttributeErrorType[string(et)])
	}
	for _, st := range hardware.States {
		v := int64(0)
		if st == res.State {
			v = 1
		}
		mb.RecordHwStatusDataPoint(now, v, id, typ, metadata.MapAttributeHwState[string(st)])
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (r *hwReceiver) shutdown(context.Context) error {
	defer r.onShutdown()
	defer r.tb.Shutdown()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	<-r.done
	r.reader.Stop()
	return r.session.Close()
}
