package controlloop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"golang.org/x/net/netutil"

	"github.com/fieldcol/fieldcol/controlloop/internal/api"
	"github.com/fieldcol/fieldcol/controlloop/internal/loop"
	"github.com/fieldcol/fieldcol/controlloop/internal/onoff"
	"github.com/fieldcol/fieldcol/controlloop/internal/pid"
	"github.com/fieldcol/fieldcol/controlloop/internal/retain"
	"github.com/fieldcol/fieldcol/controlloop/internal/telemetry"
	"github.com/fieldcol/fieldcol/controlloop/internal/watchdog"
	"github.com/fieldcol/fieldcol/controlloop/schedule"
	"github.com/fieldcol/fieldcol/internal/hardware"
	"github.com/fieldcol/fieldcol/internal/hardware/backends"
	"github.com/fieldcol/fieldcol/internal/loopbridge"
)

var (
	_ extension.Extension                   = (*controlLoop)(nil)
	_ extensioncapabilities.PipelineWatcher = (*controlLoop)(nil)
	_ extensioncapabilities.Dependent       = (*controlLoop)(nil)
	_ loopbridge.Source                     = (*controlLoop)(nil)
)

// controlLoop is the extension.
type controlLoop struct {
	cfg *Config
	set extension.Settings
	log *zap.Logger
	// registry is the hardware registry of this extension; the hardware receiver that
	// names the extension opens its devices on it too.
	registry *hardware.Registry

	session *hardware.Session
	loops   []*loop.Loop
	byName  map[string]*loop.Loop
	cfgByNm map[string]*LoopConfig
	owned   map[string]bool
	infos   map[string]api.LoopInfo
	tel     *telemetry.Telemetry
	store   *retain.Store
	dog     *watchdog.Notifier
	// saveMu serializes saves of the retentive state; durable holds, per loop, the latched
	// alarms the last save put on disk: the API shows only those.
	saveMu  sync.Mutex
	starts  retain.Starts
	durable map[string]uint64
	dmu     sync.Mutex

	persist   chan struct{}
	persistWG sync.WaitGroup
	stopSave  chan struct{}

	server   *http.Server
	apiAddr  string
	serverWG sync.WaitGroup

	mu      sync.Mutex
	started bool
	// releaseSeen: NotifyConfigSnapshot has reported this start's release markers.
	releaseSeen bool
}

func newExtension(cfg *Config, set extension.Settings) *controlLoop {
	return &controlLoop{cfg: cfg, set: set, log: set.Logger, registry: backends.NewRegistry(nil)}
}

// Start opens the hardware, restores latches, forces every output safe, starts the loops,
// the telemetry drainer, the latch persister, the API and the systemd notifier.
func (e *controlLoop) Start(ctx context.Context, host component.Host) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		if err != nil {
			// Outputs safe, hardware closed; the collector's Shutdown afterwards is a no-op.
			_ = e.stopAll(context.Background())
			e.started = false
		}
	}()
	e.started = true
	if err := checkLoopback(e.cfg.API.NetAddr.Endpoint, e.cfg.API.Auth.HasValue()); err != nil {
		return err
	}
	if e.store, err = retain.NewStore(e.cfg.LatchFile); err != nil {
		return err
	}
	saved, existed, err := e.store.Load()
	if err != nil {
		return err
	}
	unclean := existed && saved.Running
	if unclean {
		saved.Starts.Unclean++
	} else {
		saved.Starts.Clean++
	}
	e.starts = saved.Starts
	// Write the state back now, marked running: a latch_file that cannot be written must
	// stop the start, not be found out at the first trip, when the latch would silently not
	// persist; and the mark tells the next start whether this one ended cleanly.
	saved.Running = true
	if err := e.store.Save(saved); err != nil {
		return fmt.Errorf("latch_file: %w", err)
	}
	latched := saved.Latched()
	if e.session, err = e.registry.Open(e.cfg.Hardware, hardware.Settings{Logger: e.log, SafeStates: e.cfg.safeStates()}); err != nil {
		return fmt.Errorf("opening hardware: %w", err)
	}
	e.persist = make(chan struct{}, 1)
	if err := e.buildLoops(saved); err != nil {
		return err
	}
	e.warnNotOpen()
	e.durable = map[string]uint64{}
	for _, l := range e.loops {
		e.durable[l.Name()] = l.LatchedMask()
	}
	for name, names := range latched {
		if _, ok := e.byName[name]; !ok {
			e.log.Warn("latch file names a loop that is no longer configured; its latches are dropped", zap.String("loop", name), zap.Strings("alarms", names))
		} else if len(names) > 0 {
			e.log.Warn("restored latched alarms: outputs stay safe until ACK_ALARM", zap.String("loop", name), zap.Strings("alarms", names))
		}
	}
	if e.tel, err = telemetry.New(e.loops, telemetry.Settings{
		Logger: e.log, ServiceName: e.set.BuildInfo.Command, TraceEvery: e.cfg.Telemetry.TraceEvery,
		MaxLogRecords: e.cfg.Telemetry.MaxLogRecords, MaxSpans: e.cfg.Telemetry.MaxSpans,
	}); err != nil {
		return fmt.Errorf("creating control-loop telemetry: %w", err)
	}
	e.tel.Start()
	e.recordRestart(existed, unclean)
	if e.cfg.DryRun {
		e.log.Warn("dry run: the loops read their sensors and compute, but write no actuator (outputs stay safe); SET_MODE auto is refused until CLEAR_DRY_RUN")
	}
	e.stopSave = make(chan struct{})
	e.persistWG.Add(1)
	go e.persistLoop()

	for _, l := range e.loops {
		if err := l.Start(); err != nil {
			return err
		}
	}
	if err := e.startAPI(ctx, host); err != nil {
		return err
	}
	if e.cfg.Watchdog.Enabled {
		wl := make([]watchdog.Loop, len(e.loops))
		for i, l := range e.loops {
			wl[i] = watchedLoop{l: l, stallAfter: e.stallAfter(l)}
		}
		// READY=1 and the watchdog start in Ready, once every pipeline runs.
		e.dog = watchdog.New(wl, e.log, schedule.Now)
	}
	return nil
}

// deviceNames lists the devices a loop uses: its sensor, its actuators and its interlock
// sensors, in that order.
func (l *LoopConfig) deviceNames() []string {
	names := []string{l.Input.Sensor, l.Output.Actuator}
	if l.Output.Enable != "" {
		names = append(names, l.Output.Enable)
	}
	for _, il := range l.Interlocks {
		if il.Sensor != "" {
			names = append(names, il.Sensor)
		}
	}
	return names
}

// deviceFault is a device of a loop that could not be opened, as the API shows it.
type deviceFault struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// notOpen lists the devices of a loop that are not open, with the last open error. Their
// reads and writes fail and retry the open, so the list empties once they work.
func (e *controlLoop) notOpen(lc *LoopConfig) []deviceFault {
	if e.session == nil {
		return nil
	}
	var out []deviceFault
	seen := map[string]bool{}
	for _, name := range lc.deviceNames() {
		dev, ok := e.session.Device(name)
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		if err := hardware.OpenError(dev); err != nil {
			out = append(out, deviceFault{Name: name, Error: err.Error()})
		}
	}
	return out
}

// warnNotOpen says, per loop, which of its devices could not be opened and what that does
// to the loop: a sensor that is not open latches sensor_fault at the first cycle (an
// interlock's does not hold), an actuator latches actuator_fault at start; either way the
// loop is held safe while the others run.
func (e *controlLoop) warnNotOpen() {
	for i := range e.cfg.Loops {
		lc := &e.cfg.Loops[i]
		faults := e.notOpen(lc)
		if len(faults) == 0 {
			continue
		}
		names := make([]string, len(faults))
		for j, f := range faults {
			names[j] = f.Name
		}
		e.log.Warn("loop starts held safe: some of its devices could not be opened; they are retried on every read and write, and the loop's latched alarm needs ACK_ALARM once they work",
			zap.String("loop", lc.Name), zap.Strings("devices", names))
	}
}

// Dependencies implements extensioncapabilities.Dependent: the API's authenticator (and any
// middleware) must be started before the API serves its first request.
func (e *controlLoop) Dependencies() []component.ID {
	var ids []component.ID
	if e.cfg.API.Auth.HasValue() {
		ids = append(ids, e.cfg.API.Auth.Get().Config.AuthenticatorID)
	}
	for _, m := range e.cfg.API.Middlewares {
		ids = append(ids, m.ID)
	}
	return ids
}

// Ready implements extensioncapabilities.PipelineWatcher: the collector calls it when every
// pipeline is running, which is when systemd should consider the service started.
func (e *controlLoop) Ready() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dog != nil {
		e.dog.Start()
	}
	return nil
}

// NotReady implements extensioncapabilities.PipelineWatcher. The loops keep running (and
// the watchdog fed) while the receivers stop; Shutdown sends STOPPING=1.
func (e *controlLoop) NotReady() error { return nil }

// stallAfter is how long a loop may go without a healthy cycle: a few periods plus the
// slowest device read it may be waiting on.
func (e *controlLoop) stallAfter(l *loop.Loop) time.Duration {
	return 3*l.Spec().Period + e.maxDeviceTimeout() + time.Second
}

func (e *controlLoop) maxDeviceTimeout() time.Duration {
	to := time.Duration(0)
	for i := range e.cfg.Hardware.Devices {
		to = max(to, deviceTimeout(&e.cfg.Hardware.Devices[i], e.cfg.Hardware.Timeout))
	}
	return to
}

type watchedLoop struct {
	l          *loop.Loop
	stallAfter time.Duration
}

func (w watchedLoop) Name() string              { return w.l.Name() }
func (w watchedLoop) Running() bool             { return w.l.Running() }
func (w watchedLoop) Heartbeat() int64          { return w.l.Heartbeat() }
func (w watchedLoop) StallAfter() time.Duration { return w.stallAfter }
func (w watchedLoop) ForceSafe() error          { return w.l.ForceSafe(context.Background()) }

func (e *controlLoop) buildLoops(saved retain.State) error {
	e.byName = map[string]*loop.Loop{}
	e.cfgByNm = map[string]*LoopConfig{}
	e.owned = map[string]bool{}
	e.infos = map[string]api.LoopInfo{}
	pvs := make(map[string]*loop.Loop, len(e.cfg.Loops))
	for i := range e.cfg.Loops {
		lc := &e.cfg.Loops[i]
		spec, err := e.buildSpec(lc, pvs)
		if err != nil {
			return fmt.Errorf("loops[%d] (%s): %w", i, lc.Name, err)
		}
		spec.Restored = saved.Loops[lc.Name].Latched
		spec.Operator = e.restoredOperator(lc, saved.Loops[lc.Name].Operator)
		l, err := loop.New(spec, e.log, e.persist)
		if err != nil {
			return err
		}
		e.loops = append(e.loops, l)
		e.byName[lc.Name] = l
		e.cfgByNm[lc.Name] = lc
		pvs[lc.Name] = l
		outMin, outMax := lc.outputLimits()
		e.infos[lc.Name] = api.LoopInfo{
			Name: lc.Name, SetpointMin: lc.Setpoint.Min, SetpointMax: lc.Setpoint.Max,
			HasMotor: lc.Output.Enable != "", Alarms: l.AlarmNames(),
			OutputMin: outMin, OutputMax: outMax, MaxRate: lc.Setpoint.MaxRate,
		}
	}
	return nil
}

// buildSpec turns one loop's config into a loop.Spec with the session's devices. pvs holds
// the loops built so far; a peer interlock on a loop defined later resolves at run time.
func (e *controlLoop) buildSpec(lc *LoopConfig, pvs map[string]*loop.Loop) (loop.Spec, error) {
	s := loop.Spec{
		Name: lc.Name, Period: lc.Period, InputName: lc.Input.Sensor,
		ValidMin: lc.Input.ValidRange.Min, ValidMax: lc.Input.ValidRange.Max, StaleAfter: lc.Input.StaleAfter,
		Setpoint: lc.Setpoint.Value, SetpointMin: lc.Setpoint.Min, SetpointMax: lc.Setpoint.Max, MaxRate: lc.Setpoint.MaxRate,
		Speed: lc.Output.Speed, TraceEvery: e.cfg.Telemetry.TraceEvery, DryRun: e.cfg.DryRun,
		Realtime: e.cfg.Realtime, RealtimePriority: e.cfg.RealtimePriority, PreciseWindow: e.cfg.PreciseWindow, PreciseWindowYield: e.cfg.PreciseWindowYield,
		Direction: lc.direction(), StuckAfter: lc.stuckAfter(), StuckTolerance: lc.Input.Stuck.Tolerance,
		SaturationTime: lc.saturationTime(), MinResponse: lc.minResponse(),
	}
	s.OutputMin, s.OutputMax = lc.outputLimits()
	var err error
	if s.Input, err = e.readValue(lc.Input.Sensor); err != nil {
		return s, fmt.Errorf("input.sensor: %w", err)
	}
	e.owned[lc.Input.Sensor] = true
	if s.Main, err = e.output(lc.Output.Actuator, lc.Output.SafeState); err != nil {
		return s, fmt.Errorf("output.actuator: %w", err)
	}
	if lc.Output.Enable != "" {
		safe := 0.0
		if lc.Output.EnableSafeState {
			safe = 1
		}
		out, err := e.output(lc.Output.Enable, safe)
		if err != nil {
			return s, fmt.Errorf("output.enable: %w", err)
		}
		s.Enable = &out
	}
	s.Mode = loopModes[lc.Mode]
	switch {
	case lc.Controller.PID != nil:
		s.Kind = loop.PID
		if s.PID, err = pid.New(lc.Controller.PID.gains(), lc.Controller.PID.limits()); err != nil {
			return s, fmt.Errorf("controller.pid: %w", err)
		}
	case lc.Controller.OnOff != nil:
		s.Kind = loop.OnOff
		s.OnOff = &onoff.Controller{Hysteresis: lc.Controller.OnOff.Hysteresis, Action: onOffActions[lc.Controller.OnOff.Action]}
	}
	for j, ic := range lc.Interlocks {
		il := loop.Interlock{Name: ic.Name, Below: math.NaN(), Above: math.NaN(), Latch: ic.Latch, Want: true,
			StaleAfter: e.cfg.interlockStaleAfter(lc, &lc.Interlocks[j])}
		if ic.Below != nil {
			il.Below = *ic.Below
		}
		if ic.Above != nil {
			il.Above = *ic.Above
		}
		if ic.Level != nil {
			il.Want = *ic.Level
		}
		switch {
		case ic.Loop != "":
			peer := ic.Loop
			il.PeerPV = func() (float64, int64) {
				if l, ok := pvs[peer]; ok {
					return l.PV(), l.PVAt()
				}
				return math.NaN(), 0
			}
		default:
			dev, ok := e.session.Device(ic.Sensor)
			if !ok {
				return s, fmt.Errorf("interlocks[%d].sensor: no device %q", j, ic.Sensor)
			}
			if di, ok := dev.(hardware.DigitalInput); ok {
				il.Level = di.ReadLevel
			} else if il.Value, err = e.readValue(ic.Sensor); err != nil {
				return s, fmt.Errorf("interlocks[%d].sensor: %w", j, err)
			}
			e.owned[ic.Sensor] = true
		}
		s.Interlocks = append(s.Interlocks, il)
	}
	for _, ac := range lc.Alarms {
		s.Alarms = append(s.Alarms, loop.AlarmSpec{Name: ac.Name, Kind: alarmTypes[ac.Type], Limit: ac.Limit, Delay: ac.Delay})
	}
	return s, nil
}

// readValue adapts an analog or temperature device to the loop's ReadValue.
func (e *controlLoop) readValue(name string) (loop.ReadValue, error) {
	dev, ok := e.session.Device(name)
	if !ok {
		return nil, fmt.Errorf("no device %q", name)
	}
	switch d := dev.(type) {
	case hardware.TemperatureInput:
		return d.ReadTemperature, nil
	case hardware.AnalogInput:
		return d.ReadVoltage, nil
	}
	return nil, fmt.Errorf("device %q (%s) is not an analog or temperature input", name, dev.Info().Kind)
}

// output adapts a duty or digital output device to the loop's Output.
func (e *controlLoop) output(name string, safe float64) (loop.Output, error) {
	dev, ok := e.session.Device(name)
	if !ok {
		return loop.Output{}, fmt.Errorf("no device %q", name)
	}
	e.owned[name] = true
	switch d := dev.(type) {
	case hardware.DutyOutput:
		return loop.Output{Name: name, Duty: d.WriteDuty, Safe: safe}, nil
	case hardware.DigitalOutput:
		return loop.Output{Name: name, Level: d.WriteLevel, Safe: safe}, nil
	}
	return loop.Output{}, fmt.Errorf("device %q (%s) is not an output", name, dev.Info().Kind)
}

func (e *controlLoop) startAPI(ctx context.Context, host component.Host) error {
	if err := checkAPIToken(&e.cfg.API, host.GetExtensions(), e.log); err != nil {
		return err
	}
	th := e.cfg.API.AuthThrottle
	throttle := api.NewAuthThrottle(api.ThrottleSettings{MaxFailures: th.MaxFailures, Window: th.Window, Block: th.Block, MaxClients: th.MaxClients})
	h := api.NewHandler(e, api.NewLimiter(e.cfg.API.RateLimit.RequestsPerSecond, e.cfg.API.RateLimit.Burst), throttle)
	srvCfg := e.cfg.API.ServerConfig
	srv, err := srvCfg.ToServer(ctx, host.GetExtensions(), e.set.TelemetrySettings, h, confighttp.WithErrorHandler(h.ErrorHandler))
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	// The throttle goes outside everything confighttp built, so that a blocked client never
	// reaches the authenticator.
	srv.Handler = h.Wrap(srv.Handler)
	ln, err := srvCfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("api.endpoint: listening on %q: %w", srvCfg.NetAddr.Endpoint, err)
	}
	// Beyond api.max_connections, connections wait in the kernel's backlog until one closes.
	ln = netutil.LimitListener(ln, e.cfg.API.MaxConnections)
	e.server = srv
	e.apiAddr = ln.Addr().String()
	e.log.Info("control-loop command API listening", zap.String("endpoint", ln.Addr().String()), zap.Bool("auth", srvCfg.Auth.HasValue()))
	e.serverWG.Add(1)
	go func() {
		defer e.serverWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("control-loop command API stopped", zap.Error(err))
		}
	}()
	return nil
}

// persistLoop saves the retentive state whenever a loop signals a change (a latch, a
// manual output returned to safe by a trip). It runs off the loop threads because a save
// fsyncs twice.
func (e *controlLoop) persistLoop() {
	defer e.persistWG.Done()
	for {
		select {
		case <-e.stopSave:
			return
		case <-e.persist:
			if err := e.saveState(true); err != nil {
				e.log.Error("could not persist latched alarms and operator settings; a restart may forget them (outputs still start safe)", zap.Error(err))
			}
		}
	}
}

// saveState writes every loop's latches and operator state (the newest each loop has
// published) and, once they are on disk, lets the API show those latches.
func (e *controlLoop) saveState(running bool) error {
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	st := retain.State{Running: running, Starts: e.starts, Loops: make(map[string]retain.Loop, len(e.loops))}
	masks := make(map[string]uint64, len(e.loops))
	for _, l := range e.loops {
		masks[l.Name()] = l.LatchedMask()
		st.Loops[l.Name()] = retain.Loop{Latched: l.LatchedNames(), Operator: operatorRecord(e.cfgByNm[l.Name()], e.cfg.DryRun, l.Operator())}
	}
	if err := e.store.Save(st); err != nil {
		return err
	}
	e.dmu.Lock()
	for name, m := range masks {
		e.durable[name] = m
	}
	e.dmu.Unlock()
	return nil
}

// durableLatched is the part of mask that is on disk.
func (e *controlLoop) durableLatched(name string, mask uint64) uint64 {
	e.dmu.Lock()
	defer e.dmu.Unlock()
	return mask & e.durable[name]
}

// Shutdown stops the API first (no command may race the stop), then every loop (each
// forces its outputs safe), then saves the latches and closes the hardware.
func (e *controlLoop) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		return nil
	}
	e.started = false
	return e.stopAll(ctx)
}

func (e *controlLoop) stopAll(ctx context.Context) error {
	var errs []error
	if e.server != nil {
		if err := e.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("api: %w", err))
		}
		e.serverWG.Wait()
		e.server = nil
	}
	if e.dog != nil {
		e.dog.Stop()
		e.dog = nil
	}
	for _, l := range e.loops {
		l.RequestStop()
	}
	// Stop forces the safe state first, even for a loop that never started or stopped after
	// a panic, then waits for the loop thread.
	for _, l := range e.loops {
		if err := l.Stop(2*l.Spec().Period + e.maxDeviceTimeout() + time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if e.stopSave != nil {
		close(e.stopSave)
		e.persistWG.Wait()
		e.stopSave = nil
		// The last save marks a clean stop: the next start is not counted as unclean.
		if err := e.saveState(false); err != nil {
			errs = append(errs, fmt.Errorf("latch_file: saving at shutdown: %w", err))
		}
	}
	if e.tel != nil {
		if err := e.tel.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		e.tel = nil
	}
	if e.session != nil {
		if err := e.session.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing hardware: %w", err))
		}
		e.session = nil
	}
	e.loops = nil
	return errors.Join(errs...)
}

// CollectMetrics implements loopbridge.Source.
func (e *controlLoop) CollectMetrics(ms pmetric.Metrics) error {
	if e.tel == nil {
		return errors.New("controlloop extension is not started")
	}
	return e.tel.CollectMetrics(ms)
}

// DrainLogs implements loopbridge.Source.
func (e *controlLoop) DrainLogs(ld plog.Logs) int {
	if e.tel == nil {
		return 0
	}
	return e.tel.DrainLogs(ld)
}

// DrainTraces implements loopbridge.Source.
func (e *controlLoop) DrainTraces(td ptrace.Traces) int {
	if e.tel == nil {
		return 0
	}
	return e.tel.DrainTraces(td)
}

// HardwareRegistry implements loopbridge.Source.
func (e *controlLoop) HardwareRegistry() *hardware.Registry { return e.registry }

// OwnsDevice implements loopbridge.Source: inputs, outputs and interlock sensors of the
// loops belong to the loops.
func (e *controlLoop) OwnsDevice(name string) bool {
	if e.owned != nil {
		return e.owned[name]
	}
	// Before Start the configuration already says which devices the loops will own.
	for _, lc := range e.cfg.Loops {
		if lc.Input.Sensor == name || lc.Output.Actuator == name || lc.Output.Enable == name {
			return true
		}
		for _, il := range lc.Interlocks {
			if il.Sensor == name {
				return true
			}
		}
	}
	return false
}
