// Package devread reads a set of devices once per scrape: devices on different buses in
// parallel (an ADS1115 conversion on I2C never holds up the 1-wire sensor), devices on one
// bus one after the other, each bounded by its per-read timeout. It keeps each device's
// health and cumulative error counts. The workers are started once, so a steady-state
// scrape allocates nothing.
package devread

import (
	"context"
	"sync"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// ErrorTypes are the error types counted, in the order of Result.Errors.
var ErrorTypes = [...]hardware.ErrorType{
	hardware.ErrorTimeout, hardware.ErrorNack, hardware.ErrorOutOfRange,
	hardware.ErrorInvalid, hardware.ErrorStale, hardware.ErrorIO,
}

// Result is one device's outcome of the last Read, plus its running totals.
type Result struct {
	// Info identifies the device.
	Info hardware.Info
	// Role is what the device does.
	Role hardware.Role
	// Value is the reading of an analog or temperature input.
	Value float64
	// HasValue says whether Value is a real measurement worth emitting: true after a good
	// read, and after an out_of_range or stale one (the value was measured, it is just
	// not trusted); false after a timeout, nack or NaN.
	HasValue bool
	// Level is the level of a digital input or output.
	Level bool
	// Edges is the edge count of a digital input.
	Edges uint64
	// Err is the last read's error, nil when it succeeded; for an output, why it is not
	// open.
	Err error
	// State is the device's health after the last read: failed at once for a device that
	// could not be opened (its reads retry the open).
	State hardware.State
	// Errors are the cumulative failed or invalid reads, indexed like ErrorTypes.
	Errors [len(ErrorTypes)]uint64
	// Reads says whether the device is read at all (inputs); outputs only report their
	// last written state.
	Reads bool
}

// Reader reads a fixed set of devices.
type Reader struct {
	devices []hardware.Device
	results []Result
	health  []hardware.Health
	groups  []*group

	wg      sync.WaitGroup
	ctx     context.Context // the current Read's context, handed to workers via trigger
	started bool
}

type group struct {
	key     string
	idx     []int
	trigger chan struct{}
}

// New returns a Reader of devices whose state turns failed after failAfter consecutive
// failures. Call Start before Read and Stop when done.
func New(devices []hardware.Device, failAfter int) *Reader {
	r := &Reader{
		devices: devices,
		results: make([]Result, len(devices)),
		health:  make([]hardware.Health, len(devices)),
	}
	byKey := map[string]*group{}
	for i, d := range devices {
		info := d.Info()
		role := info.Kind.Role()
		r.results[i] = Result{Info: info, Role: role, State: hardware.StateOK,
			Reads: role == hardware.RoleAnalogInput || role == hardware.RoleTemperatureInput || role == hardware.RoleDigitalInput}
		r.health[i].FailAfter = failAfter
		key := busKey(info)
		g, ok := byKey[key]
		if !ok {
			g = &group{key: key, trigger: make(chan struct{})}
			byKey[key] = g
			r.groups = append(r.groups, g)
		}
		g.idx = append(g.idx, i)
	}
	return r
}

// busKey groups devices that share a bus. The bus part of hw.id before the first slash
// names it ("i2c1", "spi0.0", "onewire1"); GPIO pins and sysfs files have no shared bus and
// never block, so they form one group each.
func busKey(info hardware.Info) string {
	for i := 0; i < len(info.ID); i++ {
		if info.ID[i] == '/' {
			return info.ID[:i]
		}
	}
	return info.BusType
}

// Groups returns how many buses are read in parallel.
func (r *Reader) Groups() int { return len(r.groups) }

// Start starts one worker per bus.
func (r *Reader) Start() {
	if r.started {
		return
	}
	r.started = true
	for _, g := range r.groups {
		go r.work(g)
	}
}

// Stop stops the workers; Read must not be running.
func (r *Reader) Stop() {
	if !r.started {
		return
	}
	r.started = false
	for _, g := range r.groups {
		close(g.trigger)
	}
}

func (r *Reader) work(g *group) {
	for range g.trigger {
		for _, i := range g.idx {
			r.readOne(r.ctx, i)
		}
		r.wg.Done()
	}
}

// Read reads every device once and returns the results, valid until the next Read. It
// returns when every bus is done; a hung device costs at most its per-read timeout.
func (r *Reader) Read(ctx context.Context) []Result {
	r.ctx = ctx
	r.wg.Add(len(r.groups))
	for _, g := range r.groups {
		g.trigger <- struct{}{}
	}
	r.wg.Wait()
	return r.results
}

func (r *Reader) readOne(ctx context.Context, i int) {
	res := &r.results[i]
	var err error
	switch d := r.devices[i].(type) {
	case hardware.TemperatureInput:
		res.Value, err = d.ReadTemperature(ctx)
	case hardware.AnalogInput:
		res.Value, err = d.ReadVoltage(ctx)
	case hardware.DigitalInput:
		var lvl bool
		if lvl, err = d.ReadLevel(ctx); err == nil {
			res.Level = lvl
			var n uint64
			if n, err = d.Edges(ctx); err == nil {
				res.Edges = n
			}
		}
	case hardware.DigitalOutput:
		// An output is not read, but one that failed to open is retried each scrape and
		// reports no level meanwhile: the last written one would be a guess.
		res.Level = d.Level()
		res.Err = hardware.RetryOpen(d)
		return
	default:
		return
	}
	res.Err = err
	typ := hardware.ErrorTypeOf(err)
	res.HasValue = err == nil || typ == hardware.ErrorOutOfRange || typ == hardware.ErrorStale
	if err != nil {
		for k, t := range ErrorTypes {
			if t == typ {
				res.Errors[k]++
			}
		}
	}
	res.State = r.health[i].Observe(err)
}
