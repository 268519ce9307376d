package gpiocdev

import (
	"fmt"
	"math/bits"
	"os"
	"sync"
	"syscall"
	"time"
)

// FakeKernel is a GPIO character device kernel in memory, for tests of code that requests
// lines: it decodes and checks requests the way the kernel's gpiolib-cdev does (refusing
// non-zero padding, edges on outputs, two biases, a line already in use), drives outputs,
// queues edge events in a buffer that drops its oldest event when full while line_seqno
// goes on counting, and records every level an output was driven to.
type FakeKernel struct {
	mu     sync.Mutex
	chips  map[string]*fakeChip
	fds    map[int]*fakeReq // request fds returned by GET_LINE, not yet taken by File
	nextFD int
}

// FakeChip describes a chip of the fake kernel.
type FakeChip struct {
	// Name and Label are what GPIO_GET_CHIPINFO_IOCTL returns.
	Name, Label string
	// Lines are the line names, one per offset.
	Lines []string
	// OpenErr, when set, is what opening the chip returns (e.g. a permission error).
	OpenErr error
}

type fakeChip struct {
	spec  FakeChip
	lines []*fakeLine
}

type fakeLine struct {
	level    bool // on the wire
	used     string
	output   bool
	history  []bool // every wire level an output was driven to, in order
	req      *fakeReq
	reqFlags uint64
	debounce uint32
}

type fakeReq struct {
	k        *FakeKernel
	chip     *fakeChip
	offset   int
	flags    uint64
	bufSize  int
	consumer string

	events   []rawEvent
	seqno    uint32
	notify   chan struct{} // closed and replaced when an event arrives or the file closes
	closed   bool
	deadline time.Time
}

// NewFakeKernel returns a fake kernel without chips.
func NewFakeKernel() *FakeKernel {
	return &FakeKernel{chips: map[string]*fakeChip{}, fds: map[int]*fakeReq{}, nextFD: 100}
}

// AddChip adds a chip at path; its lines start unused, as inputs reading low.
func (k *FakeKernel) AddChip(path string, c FakeChip) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fc := &fakeChip{spec: c}
	for range c.Lines {
		fc.lines = append(fc.lines, &fakeLine{})
	}
	k.chips[path] = fc
}

// Claim marks a line as used by someone else (a kernel driver or another process).
func (k *FakeKernel) Claim(path string, offset int, consumer string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.line(path, offset).used = consumer
}

func (k *FakeKernel) line(path string, offset int) *fakeLine {
	c, ok := k.chips[path]
	if !ok || offset < 0 || offset >= len(c.lines) {
		panic(fmt.Sprintf("gpiocdev fake: no line %d on %s", offset, path))
	}
	return c.lines[offset]
}

// SetInput drives the wire of a line from outside (a switch, a sensor) and queues the
// edge events its request asked for. It reports how many events were generated.
func (k *FakeKernel) SetInput(path string, offset int, high bool) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.line(path, offset)
	if l.level == high {
		return 0
	}
	l.level = high
	r := l.req
	if r == nil || r.closed {
		return 0
	}
	logical := high != (r.flags&flagActiveLow != 0)
	var id uint32
	switch {
	case logical && r.flags&flagEdgeRising != 0:
		id = eventRising
	case !logical && r.flags&flagEdgeFalling != 0:
		id = eventFalling
	default:
		return 0
	}
	r.seqno++
	if len(r.events) == r.bufSize {
		r.events = r.events[1:] // the kernel's kfifo drops the oldest event
	}
	r.events = append(r.events, rawEvent{
		timestampNs: uint64(time.Now().UnixNano()), id: id, offset: uint32(offset), seqno: r.seqno, lineSeqno: r.seqno,
	})
	r.wake()
	return 1
}

// Level returns the wire level of a line.
func (k *FakeKernel) Level(path string, offset int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.line(path, offset).level
}

// History returns every wire level the line was driven to as an output, oldest first,
// starting with the level the request itself set.
func (k *FakeKernel) History(path string, offset int) []bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]bool(nil), k.line(path, offset).history...)
}

// FakeRequestInfo is what the fake kernel recorded of a line's current request.
type FakeRequestInfo struct {
	// Requested is false when no one holds the line.
	Requested bool
	// Consumer is the request's consumer name.
	Consumer string
	// Output, ActiveLow, PullUp, PullDown, BiasDisabled, Rising and Falling are its flags.
	Output, ActiveLow, PullUp, PullDown, BiasDisabled, Rising, Falling bool
	// DebounceMicros is the debounce period in µs.
	DebounceMicros uint32
	// EventBuffer is the size of its event buffer after the kernel's rounding.
	EventBuffer int
}

// Request returns what the line's current request asked for.
func (k *FakeKernel) Request(path string, offset int) FakeRequestInfo {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.line(path, offset)
	r := l.req
	if r == nil || r.closed {
		return FakeRequestInfo{}
	}
	f := r.flags
	return FakeRequestInfo{
		Requested: true, Consumer: r.consumer,
		Output: f&flagOutput != 0, ActiveLow: f&flagActiveLow != 0,
		PullUp: f&flagBiasPullUp != 0, PullDown: f&flagBiasPullDown != 0, BiasDisabled: f&flagBiasDisabled != 0,
		Rising: f&flagEdgeRising != 0, Falling: f&flagEdgeFalling != 0,
		DebounceMicros: l.debounce, EventBuffer: r.bufSize,
	}
}

// Open implements Kernel.
func (k *FakeKernel) Open(path string) (File, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.chips[path]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	if c.spec.OpenErr != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: c.spec.OpenErr}
	}
	return &fakeChipFile{k: k, chip: c}, nil
}

// File implements Kernel.
func (k *FakeKernel) File(fd int, _ string) (File, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.fds[fd]
	if !ok {
		return nil, syscall.EBADF
	}
	delete(k.fds, fd)
	return &fakeReqFile{r: r}, nil
}

type fakeChipFile struct {
	k      *FakeKernel
	chip   *fakeChip
	closed bool
}

func (f *fakeChipFile) Ioctl(req uint32, arg []byte) error {
	k := f.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	switch req {
	case ioctlChipInfo:
		if len(arg) < chipInfoSize {
			return syscall.EFAULT
		}
		copy(arg, encodeChipInfo(chipInfo{name: f.chip.spec.Name, label: f.chip.spec.Label, lines: uint32(len(f.chip.lines))}))
		return nil
	case ioctlLineInfo:
		if len(arg) < infoSize {
			return syscall.EFAULT
		}
		if !allZero(arg[infoPadding:infoSize]) {
			return syscall.EINVAL
		}
		off := int(nativeEndian.Uint32(arg[infoOffset:]))
		if off >= len(f.chip.lines) {
			return syscall.EINVAL
		}
		l := f.chip.lines[off]
		info := lineInfo{name: f.chip.spec.Lines[off], offset: uint32(off)}
		switch {
		case l.req != nil && !l.req.closed:
			info.consumer = l.req.consumer
			info.flags = flagUsed | l.reqFlags
			if l.debounce != 0 {
				info.attrs = []attribute{{id: attrDebounce, value: uint64(l.debounce)}}
			}
		case l.used != "":
			info.consumer = l.used
			info.flags = flagUsed
		}
		if l.output {
			info.flags |= flagOutput
		} else {
			info.flags |= flagInput
		}
		b, err := encodeLineInfo(info)
		if err != nil {
			return err
		}
		copy(arg, b)
		return nil
	case ioctlGetLine:
		return k.getLine(f.chip, arg)
	default:
		return syscall.ENOTTY
	}
}

// validFlags are the flags a request may carry.
const validFlags = flagActiveLow | flagInput | flagOutput | flagEdgeRising | flagEdgeFalling |
	flagOpenDrain | flagOpenSource | flagBiasPullUp | flagBiasPullDown | flagBiasDisabled |
	flagClockRealtime | flagClockHTE

// checkFlags mirrors gpio_v2_line_flags_validate in drivers/gpio/gpiolib-cdev.c.
func checkFlags(f uint64) error {
	bias := f & (flagBiasPullUp | flagBiasPullDown | flagBiasDisabled)
	switch {
	case f&^validFlags != 0,
		f&flagInput != 0 && f&flagOutput != 0,
		f&flagClockRealtime != 0 && f&flagClockHTE != 0,
		f&(flagEdgeRising|flagEdgeFalling) != 0 && f&flagInput == 0,
		f&(flagOpenDrain|flagOpenSource) != 0 && f&flagOutput == 0,
		f&flagOpenDrain != 0 && f&flagOpenSource != 0,
		bits.OnesCount64(bias) > 1,
		bias != 0 && f&(flagInput|flagOutput) == 0:
		return syscall.EINVAL
	}
	return nil
}

func (k *FakeKernel) getLine(c *fakeChip, arg []byte) error {
	r, err := decodeLineRequest(arg)
	if err != nil {
		return syscall.EINVAL
	}
	if len(r.offsets) != 1 {
		// fieldcol requests one line at a time; the fake does not model more.
		return syscall.EINVAL
	}
	off := int(r.offsets[0])
	if off >= len(c.lines) {
		return syscall.EINVAL
	}
	if err := checkFlags(r.flags); err != nil {
		return err
	}
	var out, debounce uint64
	for _, a := range r.attrs {
		if a.mask&^1 != 0 {
			return syscall.EINVAL
		}
		switch a.id {
		case attrFlags:
			// Per-line flags override the request's for the lines in the mask.
			if err := checkFlags(a.value); err != nil {
				return err
			}
			r.flags = a.value
		case attrOutputValues:
			out = a.value & a.mask
		case attrDebounce:
			debounce = a.value
		default:
			return syscall.EINVAL
		}
	}
	l := c.lines[off]
	if l.used != "" || (l.req != nil && !l.req.closed) {
		return syscall.EBUSY
	}
	size := int(r.eventBufferSize)
	if size == 0 {
		size = 16 // the kernel's default per line
	}
	if size > maxEventBufs {
		size = maxEventBufs
	}
	// kfifo_alloc rounds the size up to a power of two.
	size = 1 << bits.Len(uint(size-1))
	req := &fakeReq{k: k, chip: c, offset: off, flags: r.flags, bufSize: size, consumer: r.consumer, notify: make(chan struct{})}
	l.req, l.reqFlags, l.debounce = req, r.flags, 0
	if r.flags&flagInput != 0 {
		l.debounce = uint32(debounce)
	}
	if r.flags&flagOutput != 0 {
		l.output = true
		k.drive(l, out&1 != 0)
	} else if r.flags&flagInput != 0 {
		l.output = false
	}
	fd := k.nextFD
	k.nextFD++
	k.fds[fd] = req
	nativeEndian.PutUint32(arg[reqFD:], uint32(fd))
	return nil
}

// drive sets an output's wire level from a logical value. Callers hold mu.
func (k *FakeKernel) drive(l *fakeLine, logical bool) {
	l.level = logical != (l.reqFlags&flagActiveLow != 0)
	l.history = append(l.history, l.level)
}

func (f *fakeChipFile) Read([]byte) (int, error)        { return 0, syscall.EINVAL }
func (f *fakeChipFile) SetReadDeadline(time.Time) error { return os.ErrNoDeadline }
func (f *fakeChipFile) Close() error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	return nil
}

type fakeReqFile struct{ r *fakeReq }

// wake tells waiting readers that something changed. Callers hold k.mu.
func (r *fakeReq) wake() {
	close(r.notify)
	r.notify = make(chan struct{})
}

func (f *fakeReqFile) Ioctl(req uint32, arg []byte) error {
	r := f.r
	k := r.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.closed {
		return os.ErrClosed
	}
	l := r.chip.lines[r.offset]
	switch req {
	case ioctlGetValues:
		_, mask, err := decodeValues(arg)
		if err != nil {
			return syscall.EFAULT
		}
		if mask == 0 {
			return syscall.EINVAL
		}
		var v uint64
		if l.level != (r.flags&flagActiveLow != 0) {
			v = 1
		}
		copy(arg, encodeValues(v&mask, mask))
		return nil
	case ioctlSetValues:
		b, mask, err := decodeValues(arg)
		if err != nil {
			return syscall.EFAULT
		}
		if mask == 0 {
			return syscall.EINVAL
		}
		if r.flags&flagOutput == 0 {
			return syscall.EPERM
		}
		k.drive(l, b&1 != 0)
		return nil
	default:
		return syscall.ENOTTY
	}
}

func (f *fakeReqFile) SetReadDeadline(t time.Time) error {
	k := f.r.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if f.r.closed {
		return os.ErrClosed
	}
	f.r.deadline = t
	f.r.wake()
	return nil
}

func (f *fakeReqFile) Read(p []byte) (int, error) {
	r := f.r
	k := r.k
	if len(p) < eventSize {
		return 0, syscall.EINVAL
	}
	for {
		k.mu.Lock()
		if r.closed {
			k.mu.Unlock()
			return 0, os.ErrClosed
		}
		if len(r.events) > 0 {
			n := 0
			for len(r.events) > 0 && n+eventSize <= len(p) {
				copy(p[n:], encodeEvent(r.events[0]))
				r.events = r.events[1:]
				n += eventSize
			}
			k.mu.Unlock()
			return n, nil
		}
		deadline, notify := r.deadline, r.notify
		k.mu.Unlock()
		if deadline.IsZero() {
			<-notify
			continue
		}
		d := time.Until(deadline)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		select {
		case <-notify:
			t.Stop()
		case <-t.C:
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Close releases the line; like the Raspberry Pi kernel without strict_gpiod, an output
// keeps its last level.
func (f *fakeReqFile) Close() error {
	r := f.r
	k := r.k
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.closed {
		return os.ErrClosed
	}
	r.closed = true
	l := r.chip.lines[r.offset]
	if l.req == r {
		l.req = nil
		l.debounce = 0
	}
	r.wake()
	return nil
}
