// Package gpiocdev drives GPIO lines through the Linux GPIO character device, uAPI v2
// (/dev/gpiochipN, linux/gpio.h), with ioctls from golang.org/x/sys/unix and no cgo.
//
// A line requested here belongs to this process until it is closed or the process exits:
// the kernel refuses it to anyone else, an output is driven from the moment of the request
// (its initial value is part of the request), and edges are timestamped and numbered by the
// kernel. What happens to an output once it is released is the GPIO driver's choice: the
// Raspberry Pi kernel keeps the last value, unless dtparam=strict_gpiod is set, with which a
// released line reverts to an input with its default pull.
package gpiocdev

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Consumer is the name the kernel shows (gpioinfo, /sys/kernel/debug/gpio) as the user of
// every line this package requests.
const Consumer = "fieldcol"

// MaxEventBuffer is the largest event buffer the kernel gives a one-line request
// (GPIO_V2_LINES_MAX * 16 events); it caps larger requests to it.
const MaxEventBuffer = maxEventBufs

var (
	// ErrTimeout is returned by ReadEvent when no event arrived within its timeout.
	ErrTimeout = errors.New("gpiocdev: no event before the timeout")
	// ErrClosed is returned by a Line's methods once it is closed.
	ErrClosed = errors.New("gpiocdev: line closed")
)

// ChipInfo describes one GPIO chip.
type ChipInfo struct {
	// Name is the chip's device name, e.g. "gpiochip0".
	Name string
	// Label is the driver's label, e.g. "pinctrl-bcm2711" or "pinctrl-rp1".
	Label string
	// Path is the character device, e.g. "/dev/gpiochip0".
	Path string
	// Lines are the chip's lines in offset order.
	Lines []LineInfo
}

// LineInfo describes one line of a chip.
type LineInfo struct {
	// Offset is the line's number on its chip.
	Offset int
	// Name is the line's name from the device tree, e.g. "GPIO17"; may be empty.
	Name string
	// Consumer is who requested the line (a driver or a process), empty when unused.
	Consumer string
	// Used is true when the line is requested by a process or claimed by a kernel driver.
	Used bool
	// Output is true when the line is configured as an output.
	Output bool
}

// Bias is the pull resistor of a line.
type Bias int

const (
	// BiasAsIs leaves the pull as the board or an earlier user set it.
	BiasAsIs Bias = iota
	// BiasPullUp enables the pull-up.
	BiasPullUp
	// BiasPullDown enables the pull-down.
	BiasPullDown
	// BiasDisabled disables both pulls (the line floats).
	BiasDisabled
)

// Edge selects the edges an input reports as events.
type Edge int

const (
	// EdgeNone reports no events.
	EdgeNone Edge = iota
	// EdgeRising reports rising edges (of the logical level: falling on the wire when active low).
	EdgeRising
	// EdgeFalling reports falling edges.
	EdgeFalling
	// EdgeBoth reports both.
	EdgeBoth
)

// LineConfig is how one line is requested.
type LineConfig struct {
	// Offset is the line on the chip.
	Offset int
	// Output requests an output; otherwise the line is an input.
	Output bool
	// Value is an output's initial logical value, set in the request itself so that the
	// line is driven to it from the moment it is requested.
	Value bool
	// ActiveLow inverts the logical level: values and edges are logical.
	ActiveLow bool
	// Bias is the pull resistor.
	Bias Bias
	// Edge is the edge detection of an input.
	Edge Edge
	// Debounce is the kernel's debounce period of an input (rounded up to a µs); 0 is none.
	Debounce time.Duration
	// EventBufferSize is how many events the kernel queues before it drops the oldest;
	// 0 is the kernel's default (16), above MaxEventBuffer the kernel caps it.
	EventBufferSize int
}

// Event is one edge the kernel saw on a line.
type Event struct {
	// Timestamp is the kernel's CLOCK_MONOTONIC time of the edge.
	Timestamp time.Duration
	// Rising is true for a rising edge, false for a falling one (logical level).
	Rising bool
	// Offset is the line's offset on its chip.
	Offset int
	// LineSeqno numbers the line's events from 1 since the request, counted by the kernel
	// when the edge is seen: events the kernel dropped from a full buffer still have their
	// number, so the difference between two events is the exact count in between.
	LineSeqno uint32
}

// Host is the character device API on a kernel; the zero Host uses the real one. The
// package functions use the zero Host.
type Host struct {
	// Kernel is the operating system under the API; nil means the real kernel.
	Kernel Kernel
}

func (h Host) kernel() Kernel {
	if h.Kernel == nil {
		return osKernel{}
	}
	return h.Kernel
}

// Chips lists the GPIO chips in devDir (normally /dev) on the real kernel; see Host.Chips.
func Chips(devDir string) ([]ChipInfo, error) { return Host{}.Chips(devDir) }

// Find returns the chip and offset of a line by name on the real kernel; see Host.Find.
func Find(devDir, lineName string) (chipPath string, offset int, err error) {
	return Host{}.Find(devDir, lineName)
}

// Request requests one line on the real kernel; see Host.Request.
func Request(chipPath string, cfg LineConfig) (*Line, error) { return Host{}.Request(chipPath, cfg) }

// ChipPaths returns the gpiochipN character devices in devDir in chip number order. A
// devDir that does not exist has none.
func ChipPaths(devDir string) ([]string, error) {
	entries, err := os.ReadDir(devDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing gpiochips in %s: %w", devDir, err)
	}
	type chip struct {
		n    int
		path string
	}
	var chips []chip
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), "gpiochip")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 {
			continue
		}
		chips = append(chips, chip{n, filepath.Join(devDir, e.Name())})
	}
	slices.SortFunc(chips, func(a, b chip) int { return a.n - b.n })
	paths := make([]string, len(chips))
	for i, c := range chips {
		paths[i] = c.path
	}
	return paths, nil
}

// Chips lists the GPIO chips in devDir with their lines. It returns every chip it could
// read, and an error naming each one it could not (most often a permission: on Raspberry
// Pi OS /dev/gpiochip* belong to group gpio), so that a caller can report both.
func (h Host) Chips(devDir string) ([]ChipInfo, error) {
	paths, err := ChipPaths(devDir)
	if err != nil {
		return nil, err
	}
	var chips []ChipInfo
	var errs []error
	for _, p := range paths {
		c, err := h.chip(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		chips = append(chips, c)
	}
	return chips, errors.Join(errs...)
}

// chip reads one chip's info and its lines.
func (h Host) chip(path string) (ChipInfo, error) {
	f, err := h.kernel().Open(path)
	if err != nil {
		return ChipInfo{}, fmt.Errorf("opening %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	b := make([]byte, chipInfoSize)
	if err := f.Ioctl(ioctlChipInfo, b); err != nil {
		return ChipInfo{}, fmt.Errorf("%s: GPIO_GET_CHIPINFO_IOCTL: %w", path, err)
	}
	ci, err := decodeChipInfo(b)
	if err != nil {
		return ChipInfo{}, fmt.Errorf("%s: %w", path, err)
	}
	c := ChipInfo{Name: ci.name, Label: ci.label, Path: path, Lines: make([]LineInfo, 0, ci.lines)}
	for off := range ci.lines {
		b := newLineInfoRequest(off)
		if err := f.Ioctl(ioctlLineInfo, b); err != nil {
			return ChipInfo{}, fmt.Errorf("%s: GPIO_V2_GET_LINEINFO_IOCTL for line %d: %w", path, off, err)
		}
		li, err := decodeLineInfo(b)
		if err != nil {
			return ChipInfo{}, fmt.Errorf("%s: line %d: %w", path, off, err)
		}
		c.Lines = append(c.Lines, LineInfo{
			Offset: int(li.offset), Name: li.name, Consumer: li.consumer,
			Used: li.flags&flagUsed != 0, Output: li.flags&flagOutput != 0,
		})
	}
	return c, nil
}

// headerLabels are the labels of the chips that carry a Raspberry Pi's 40-pin header, on
// which the line offset is the BCM GPIO number: Pi 1 to 3 and Zero, Pi 4, Pi 5.
var headerLabels = []string{"pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1"}

// IsHeaderChip reports whether a chip label is one of a Raspberry Pi's header chips.
func IsHeaderChip(label string) bool { return slices.Contains(headerLabels, label) }

// Find returns the chip and offset of the line named lineName. A name the device tree
// gives a line ("GPIO17", "ID_SDA") is looked up on every chip, a Raspberry Pi header chip
// first; a name "GPIOn" that no line carries (Pi 3 and 4 device trees name GPIO7
// "SPI_CE1_N") is line n of the header chip, whose offsets are the BCM numbers. On a Pi 5
// the header is the chip labelled pinctrl-rp1 (gpiochip4 on older kernels, gpiochip0 on
// newer ones).
func (h Host) Find(devDir, lineName string) (chipPath string, offset int, err error) {
	chips, err := h.Chips(devDir)
	if len(chips) == 0 {
		if err != nil {
			return "", 0, fmt.Errorf("no readable gpiochip in %s: %w", devDir, err)
		}
		return "", 0, fmt.Errorf("no gpiochip in %s", devDir)
	}
	if path, off, ok := FindIn(chips, lineName); ok {
		return path, off, nil
	}
	var seen []string
	for _, c := range chips {
		seen = append(seen, fmt.Sprintf("%s (%s, %d lines)", c.Name, c.Label, len(c.Lines)))
	}
	msg := fmt.Sprintf("no GPIO line named %q on %s (see gpioinfo for the line names)", lineName, strings.Join(seen, ", "))
	if err != nil {
		return "", 0, fmt.Errorf("%s; some chips could not be read: %w", msg, err)
	}
	return "", 0, errors.New(msg)
}

// FindIn is Find on chips already listed (the hardware probe shows which name opens each
// line); ok is false when no line answers to lineName.
func FindIn(chips []ChipInfo, lineName string) (chipPath string, offset int, ok bool) {
	// Header chips first, then the others in chip order.
	chips = slices.Clone(chips)
	slices.SortStableFunc(chips, func(a, b ChipInfo) int {
		ha, hb := IsHeaderChip(a.Label), IsHeaderChip(b.Label)
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return 0
	})
	for _, c := range chips {
		for _, l := range c.Lines {
			if l.Name == lineName {
				return c.Path, l.Offset, true
			}
		}
	}
	if num, ok := strings.CutPrefix(lineName, "GPIO"); ok {
		if n, perr := strconv.Atoi(num); perr == nil && n >= 0 {
			for _, c := range chips {
				if IsHeaderChip(c.Label) && n < len(c.Lines) {
					return c.Path, n, true
				}
			}
		}
	}
	return "", 0, false
}

// Request requests one line of the chip at chipPath with the consumer name Consumer. An
// output is driven to cfg.Value by the request itself.
func (h Host) Request(chipPath string, cfg LineConfig) (*Line, error) {
	r, err := cfg.request()
	if err != nil {
		return nil, err
	}
	b, err := encodeLineRequest(r)
	if err != nil {
		return nil, err
	}
	k := h.kernel()
	chip, err := k.Open(chipPath)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", chipPath, err)
	}
	// The request fd outlives the chip fd it came from.
	defer func() { _ = chip.Close() }()
	if err := chip.Ioctl(ioctlGetLine, b); err != nil {
		return nil, fmt.Errorf("requesting line %d of %s: %w", cfg.Offset, chipPath, err)
	}
	fd := int32(nativeEndian.Uint32(b[reqFD:]))
	if fd < 0 {
		return nil, fmt.Errorf("requesting line %d of %s: the kernel returned fd %d", cfg.Offset, chipPath, fd)
	}
	f, err := k.File(int(fd), fmt.Sprintf("%s:%d", chipPath, cfg.Offset))
	if err != nil {
		return nil, fmt.Errorf("line %d of %s: %w", cfg.Offset, chipPath, err)
	}
	return &Line{f: f, chip: chipPath, offset: cfg.Offset}, nil
}

// request turns a LineConfig into the kernel's request, refusing what the kernel would
// refuse with a bare EINVAL.
func (cfg LineConfig) request() (lineRequest, error) {
	if cfg.Offset < 0 || int64(cfg.Offset) > math.MaxUint32 {
		return lineRequest{}, fmt.Errorf("gpiocdev: line offset %d out of range", cfg.Offset)
	}
	r := lineRequest{offsets: []uint32{uint32(cfg.Offset)}, consumer: Consumer}
	if cfg.ActiveLow {
		r.flags |= flagActiveLow
	}
	switch cfg.Bias {
	case BiasAsIs:
	case BiasPullUp:
		r.flags |= flagBiasPullUp
	case BiasPullDown:
		r.flags |= flagBiasPullDown
	case BiasDisabled:
		r.flags |= flagBiasDisabled
	default:
		return lineRequest{}, fmt.Errorf("gpiocdev: unknown bias %d", cfg.Bias)
	}
	if cfg.Output {
		if cfg.Edge != EdgeNone || cfg.Debounce != 0 {
			return lineRequest{}, errors.New("gpiocdev: edge detection and debounce apply to inputs only")
		}
		r.flags |= flagOutput
		var v uint64
		if cfg.Value {
			v = 1
		}
		r.attrs = append(r.attrs, configAttr{attribute: attribute{id: attrOutputValues, value: v}, mask: 1})
		return r, nil
	}
	r.flags |= flagInput
	switch cfg.Edge {
	case EdgeNone:
	case EdgeRising:
		r.flags |= flagEdgeRising
	case EdgeFalling:
		r.flags |= flagEdgeFalling
	case EdgeBoth:
		r.flags |= flagEdgeRising | flagEdgeFalling
	default:
		return lineRequest{}, fmt.Errorf("gpiocdev: unknown edge %d", cfg.Edge)
	}
	if cfg.Debounce < 0 {
		return lineRequest{}, fmt.Errorf("gpiocdev: negative debounce %s", cfg.Debounce)
	}
	if cfg.Debounce > 0 {
		us := (cfg.Debounce + time.Microsecond - 1) / time.Microsecond
		if us > math.MaxUint32 {
			return lineRequest{}, fmt.Errorf("gpiocdev: debounce %s above the kernel's %d µs", cfg.Debounce, uint32(math.MaxUint32))
		}
		r.attrs = append(r.attrs, configAttr{attribute: attribute{id: attrDebounce, value: uint64(us)}, mask: 1})
	}
	if cfg.EventBufferSize < 0 || int64(cfg.EventBufferSize) > math.MaxUint32 {
		return lineRequest{}, fmt.Errorf("gpiocdev: event buffer size %d out of range", cfg.EventBufferSize)
	}
	r.eventBufferSize = uint32(cfg.EventBufferSize)
	return r, nil
}

// Line is one requested line. Set, Value and Close may be called from any goroutine, also
// while another one waits in ReadEvent; Close makes that wait return ErrClosed.
type Line struct {
	f      File
	chip   string
	offset int

	closeOnce sync.Once
	closeErr  error

	rmu     sync.Mutex // one reader at a time; guards buf and pending
	buf     []byte
	pending []rawEvent
}

// Chip returns the chip's path.
func (l *Line) Chip() string { return l.chip }

// Offset returns the line's offset on its chip.
func (l *Line) Offset() int { return l.offset }

// Set drives an output to the logical value v.
func (l *Line) Set(v bool) error {
	var bits uint64
	if v {
		bits = 1
	}
	if err := l.f.Ioctl(ioctlSetValues, encodeValues(bits, 1)); err != nil {
		return l.wrap("setting", err)
	}
	return nil
}

// Value reads the line's logical value.
func (l *Line) Value() (bool, error) {
	b := encodeValues(0, 1)
	if err := l.f.Ioctl(ioctlGetValues, b); err != nil {
		return false, l.wrap("reading", err)
	}
	bits, _, err := decodeValues(b)
	if err != nil {
		return false, l.wrap("reading", err)
	}
	return bits&1 != 0, nil
}

// eventsPerRead is how many events one read(2) takes off the kernel's buffer at most.
const eventsPerRead = 16

// ReadEvent returns the next edge event, waiting at most timeout for it (0 or less waits
// until an event arrives or the line is closed). It returns ErrTimeout when none came.
func (l *Line) ReadEvent(timeout time.Duration) (Event, error) {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if len(l.pending) == 0 {
		if err := l.fill(timeout); err != nil {
			return Event{}, err
		}
	}
	e := l.pending[0]
	l.pending = l.pending[1:]
	return Event{
		Timestamp: time.Duration(e.timestampNs), Rising: e.id == eventRising,
		Offset: int(e.offset), LineSeqno: e.lineSeqno,
	}, nil
}

// fill reads whatever events the kernel has queued, waiting for at least one.
func (l *Line) fill(timeout time.Duration) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	if err := l.f.SetReadDeadline(deadline); err != nil {
		return l.wrap("waiting for events on", err)
	}
	if l.buf == nil {
		l.buf = make([]byte, eventsPerRead*eventSize)
	}
	n, err := l.f.Read(l.buf)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case err != nil:
		return l.wrap("reading events from", err)
	case n%eventSize != 0 || n == 0:
		return fmt.Errorf("gpiocdev: line %d of %s: read %d bytes, not a whole number of %d-byte events", l.offset, l.chip, n, eventSize)
	}
	for off := 0; off < n; off += eventSize {
		e, err := decodeEvent(l.buf[off : off+eventSize])
		if err != nil {
			return fmt.Errorf("gpiocdev: line %d of %s: %w", l.offset, l.chip, err)
		}
		l.pending = append(l.pending, e)
	}
	return nil
}

// Close releases the line; what an output does then is the driver's choice (see the
// package comment). It is idempotent.
func (l *Line) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.f.Close() })
	return l.closeErr
}

func (l *Line) wrap(what string, err error) error {
	if errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("gpiocdev: %s line %d of %s: %w", what, l.offset, l.chip, err)
}
