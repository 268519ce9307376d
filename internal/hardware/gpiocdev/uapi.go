package gpiocdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The GPIO character device uAPI v2, from include/uapi/linux/gpio.h (Linux 5.10 and later).
// The structs are encoded byte by byte at the offsets the kernel uses rather than through Go
// structs: Go aligns a uint64 to 4 bytes on 32-bit ARM (a Pi running armhf) where the
// kernel's __aligned_u64 is 8-byte aligned. TestLayoutMatchesKernelHeader compiles a C
// program against /usr/include/linux/gpio.h and checks every size, offset and number here.

// nativeEndian is the byte order of the kernel's structs: the machine's own.
var nativeEndian = binary.NativeEndian

const (
	maxNameSize  = 32 // GPIO_MAX_NAME_SIZE
	maxLines     = 64 // GPIO_V2_LINES_MAX
	maxAttrs     = 10 // GPIO_V2_LINE_NUM_ATTRS_MAX
	maxEventBufs = maxLines * 16
)

// enum gpio_v2_line_flag.
const (
	flagUsed          uint64 = 1 << 0
	flagActiveLow     uint64 = 1 << 1
	flagInput         uint64 = 1 << 2
	flagOutput        uint64 = 1 << 3
	flagEdgeRising    uint64 = 1 << 4
	flagEdgeFalling   uint64 = 1 << 5
	flagOpenDrain     uint64 = 1 << 6
	flagOpenSource    uint64 = 1 << 7
	flagBiasPullUp    uint64 = 1 << 8
	flagBiasPullDown  uint64 = 1 << 9
	flagBiasDisabled  uint64 = 1 << 10
	flagClockRealtime uint64 = 1 << 11
	flagClockHTE      uint64 = 1 << 12
)

// enum gpio_v2_line_attr_id.
const (
	attrFlags        = 1
	attrOutputValues = 2
	attrDebounce     = 3
)

// enum gpio_v2_line_event_id.
const (
	eventRising  = 1
	eventFalling = 2
)

// Sizes and offsets of the structs.
const (
	// struct gpiochip_info
	chipInfoSize   = 68
	chipInfoName   = 0
	chipInfoLabel  = 32
	chipInfoLines  = 64
	lineValuesSize = 16 // struct gpio_v2_line_values: bits, mask
	valuesBits     = 0
	valuesMask     = 8
	// struct gpio_v2_line_attribute
	attrSize      = 16
	attrID        = 0
	attrPadding   = 4
	attrValue     = 8 // the union: flags, values or debounce_period_us
	cfgAttrSize   = 24
	cfgAttrMask   = 16 // struct gpio_v2_line_config_attribute: attr, mask
	lineCfgSize   = 272
	lineCfgFlags  = 0
	lineCfgNAttrs = 8
	lineCfgPad    = 12 // __u32 padding[5]
	lineCfgAttrs  = 32
	// struct gpio_v2_line_request
	reqSize        = 592
	reqOffsets     = 0
	reqConsumer    = 256
	reqConfig      = 288
	reqNumLines    = 560
	reqEventBuffer = 564
	reqPadding     = 568 // __u32 padding[5]
	reqFD          = 588
	// struct gpio_v2_line_info
	infoSize     = 256
	infoName     = 0
	infoConsumer = 32
	infoOffset   = 64
	infoNAttrs   = 68
	infoFlags    = 72
	infoAttrs    = 80
	infoPadding  = 240 // __u32 padding[4]
	// struct gpio_v2_line_event
	eventSize      = 48
	eventTimestamp = 0
	eventID        = 8
	eventOffset    = 12
	eventSeqno     = 16
	eventLineSeqno = 20
	eventPadding   = 24 // __u32 padding[6]
)

// ioc is the kernel's _IOC(dir, type, nr, size) for the generic ioctl layout of x86, ARM,
// arm64 and RISC-V (asm-generic/ioctl.h): 8 bits nr, 8 bits type, 14 bits size, 2 bits dir.
func ioc(dir, typ, nr, size uint32) uint32 { return dir<<30 | size<<16 | typ<<8 | nr }

const (
	iocWrite = 1
	iocRead  = 2
	gpioType = 0xB4
)

var (
	ioctlChipInfo  = ioc(iocRead, gpioType, 0x01, chipInfoSize)            // GPIO_GET_CHIPINFO_IOCTL
	ioctlLineInfo  = ioc(iocRead|iocWrite, gpioType, 0x05, infoSize)       // GPIO_V2_GET_LINEINFO_IOCTL
	ioctlGetLine   = ioc(iocRead|iocWrite, gpioType, 0x07, reqSize)        // GPIO_V2_GET_LINE_IOCTL
	ioctlGetValues = ioc(iocRead|iocWrite, gpioType, 0x0E, lineValuesSize) // GPIO_V2_LINE_GET_VALUES_IOCTL
	ioctlSetValues = ioc(iocRead|iocWrite, gpioType, 0x0F, lineValuesSize) // GPIO_V2_LINE_SET_VALUES_IOCTL
)

// errShort is a struct shorter than its kernel size.
var errShort = errors.New("gpiocdev: buffer shorter than the kernel struct")

// cString reads a NUL-terminated name from a fixed-size kernel field.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// putCString writes s into a fixed-size field, truncated so that a NUL always ends it.
func putCString(dst []byte, s string) {
	clear(dst)
	copy(dst[:len(dst)-1], s)
}

// chipInfo is struct gpiochip_info.
type chipInfo struct {
	name, label string
	lines       uint32
}

func decodeChipInfo(b []byte) (chipInfo, error) {
	if len(b) < chipInfoSize {
		return chipInfo{}, errShort
	}
	return chipInfo{
		name:  cString(b[chipInfoName : chipInfoName+maxNameSize]),
		label: cString(b[chipInfoLabel : chipInfoLabel+maxNameSize]),
		lines: nativeEndian.Uint32(b[chipInfoLines:]),
	}, nil
}

func encodeChipInfo(c chipInfo) []byte {
	b := make([]byte, chipInfoSize)
	putCString(b[chipInfoName:chipInfoName+maxNameSize], c.name)
	putCString(b[chipInfoLabel:chipInfoLabel+maxNameSize], c.label)
	nativeEndian.PutUint32(b[chipInfoLines:], c.lines)
	return b
}

// attribute is struct gpio_v2_line_attribute: value holds flags, output values or the
// debounce period in µs, by id.
type attribute struct {
	id    uint32
	value uint64
}

func decodeAttr(b []byte) attribute {
	a := attribute{id: nativeEndian.Uint32(b[attrID:])}
	if a.id == attrDebounce {
		// debounce_period_us is a __u32 in the union: the upper half is not part of it.
		a.value = uint64(nativeEndian.Uint32(b[attrValue:]))
	} else {
		a.value = nativeEndian.Uint64(b[attrValue:])
	}
	return a
}

func encodeAttr(b []byte, a attribute) {
	nativeEndian.PutUint32(b[attrID:], a.id)
	nativeEndian.PutUint32(b[attrPadding:], 0)
	if a.id == attrDebounce {
		nativeEndian.PutUint64(b[attrValue:], 0)
		nativeEndian.PutUint32(b[attrValue:], uint32(a.value))
		return
	}
	nativeEndian.PutUint64(b[attrValue:], a.value)
}

// lineInfo is struct gpio_v2_line_info.
type lineInfo struct {
	name, consumer string
	offset         uint32
	flags          uint64
	attrs          []attribute
}

// debounce returns the line's debounce period in µs, 0 when it has none.
func (l lineInfo) debounce() uint32 {
	for _, a := range l.attrs {
		if a.id == attrDebounce {
			return uint32(a.value)
		}
	}
	return 0
}

// newLineInfoRequest is the argument of GPIO_V2_GET_LINEINFO_IOCTL: the offset set and
// everything else zero, as the kernel requires of the padding.
func newLineInfoRequest(offset uint32) []byte {
	b := make([]byte, infoSize)
	nativeEndian.PutUint32(b[infoOffset:], offset)
	return b
}

func decodeLineInfo(b []byte) (lineInfo, error) {
	if len(b) < infoSize {
		return lineInfo{}, errShort
	}
	l := lineInfo{
		name:     cString(b[infoName : infoName+maxNameSize]),
		consumer: cString(b[infoConsumer : infoConsumer+maxNameSize]),
		offset:   nativeEndian.Uint32(b[infoOffset:]),
		flags:    nativeEndian.Uint64(b[infoFlags:]),
	}
	n := nativeEndian.Uint32(b[infoNAttrs:])
	if n > maxAttrs {
		return lineInfo{}, fmt.Errorf("gpiocdev: line info has %d attributes, more than the %d the struct holds", n, maxAttrs)
	}
	for i := range int(n) {
		l.attrs = append(l.attrs, decodeAttr(b[infoAttrs+i*attrSize:]))
	}
	return l, nil
}

func encodeLineInfo(l lineInfo) ([]byte, error) {
	if len(l.attrs) > maxAttrs {
		return nil, fmt.Errorf("gpiocdev: %d attributes, at most %d", len(l.attrs), maxAttrs)
	}
	b := make([]byte, infoSize)
	putCString(b[infoName:infoName+maxNameSize], l.name)
	putCString(b[infoConsumer:infoConsumer+maxNameSize], l.consumer)
	nativeEndian.PutUint32(b[infoOffset:], l.offset)
	nativeEndian.PutUint32(b[infoNAttrs:], uint32(len(l.attrs)))
	nativeEndian.PutUint64(b[infoFlags:], l.flags)
	for i, a := range l.attrs {
		encodeAttr(b[infoAttrs+i*attrSize:], a)
	}
	return b, nil
}

// configAttr is struct gpio_v2_line_config_attribute: an attribute and the lines (bits
// of the request's offsets) it applies to.
type configAttr struct {
	attribute
	mask uint64
}

// lineRequest is struct gpio_v2_line_request, with its config inlined.
type lineRequest struct {
	offsets         []uint32
	consumer        string
	flags           uint64
	attrs           []configAttr
	eventBufferSize uint32
	fd              int32
}

func encodeLineRequest(r lineRequest) ([]byte, error) {
	switch {
	case len(r.offsets) == 0 || len(r.offsets) > maxLines:
		return nil, fmt.Errorf("gpiocdev: a request holds 1..%d lines, got %d", maxLines, len(r.offsets))
	case len(r.attrs) > maxAttrs:
		return nil, fmt.Errorf("gpiocdev: a request holds at most %d attributes, got %d", maxAttrs, len(r.attrs))
	}
	b := make([]byte, reqSize)
	for i, o := range r.offsets {
		nativeEndian.PutUint32(b[reqOffsets+4*i:], o)
	}
	putCString(b[reqConsumer:reqConsumer+maxNameSize], r.consumer)
	c := b[reqConfig : reqConfig+lineCfgSize]
	nativeEndian.PutUint64(c[lineCfgFlags:], r.flags)
	nativeEndian.PutUint32(c[lineCfgNAttrs:], uint32(len(r.attrs)))
	for i, a := range r.attrs {
		at := c[lineCfgAttrs+i*cfgAttrSize:]
		encodeAttr(at, a.attribute)
		nativeEndian.PutUint64(at[cfgAttrMask:], a.mask)
	}
	nativeEndian.PutUint32(b[reqNumLines:], uint32(len(r.offsets)))
	nativeEndian.PutUint32(b[reqEventBuffer:], r.eventBufferSize)
	nativeEndian.PutUint32(b[reqFD:], uint32(r.fd))
	return b, nil
}

// decodeLineRequest reads a request the way the kernel does, refusing what it refuses:
// padding that is not zero, too many lines or attributes. The fake kernel uses it.
func decodeLineRequest(b []byte) (lineRequest, error) {
	if len(b) < reqSize {
		return lineRequest{}, errShort
	}
	if !allZero(b[reqPadding:reqFD]) {
		return lineRequest{}, errors.New("gpiocdev: request padding is not zero")
	}
	c := b[reqConfig : reqConfig+lineCfgSize]
	if !allZero(c[lineCfgPad:lineCfgAttrs]) {
		return lineRequest{}, errors.New("gpiocdev: config padding is not zero")
	}
	n := nativeEndian.Uint32(b[reqNumLines:])
	if n == 0 || n > maxLines {
		return lineRequest{}, fmt.Errorf("gpiocdev: num_lines %d is not 1..%d", n, maxLines)
	}
	na := nativeEndian.Uint32(c[lineCfgNAttrs:])
	if na > maxAttrs {
		return lineRequest{}, fmt.Errorf("gpiocdev: num_attrs %d is above %d", na, maxAttrs)
	}
	r := lineRequest{
		consumer:        cString(b[reqConsumer : reqConsumer+maxNameSize]),
		flags:           nativeEndian.Uint64(c[lineCfgFlags:]),
		eventBufferSize: nativeEndian.Uint32(b[reqEventBuffer:]),
		fd:              int32(nativeEndian.Uint32(b[reqFD:])),
	}
	for i := range int(n) {
		r.offsets = append(r.offsets, nativeEndian.Uint32(b[reqOffsets+4*i:]))
	}
	for i := range int(na) {
		at := c[lineCfgAttrs+i*cfgAttrSize:]
		r.attrs = append(r.attrs, configAttr{attribute: decodeAttr(at), mask: nativeEndian.Uint64(at[cfgAttrMask:])})
	}
	return r, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// rawEvent is struct gpio_v2_line_event.
type rawEvent struct {
	timestampNs uint64
	id          uint32
	offset      uint32
	seqno       uint32
	lineSeqno   uint32
}

func decodeEvent(b []byte) (rawEvent, error) {
	if len(b) < eventSize {
		return rawEvent{}, errShort
	}
	e := rawEvent{
		timestampNs: nativeEndian.Uint64(b[eventTimestamp:]),
		id:          nativeEndian.Uint32(b[eventID:]),
		offset:      nativeEndian.Uint32(b[eventOffset:]),
		seqno:       nativeEndian.Uint32(b[eventSeqno:]),
		lineSeqno:   nativeEndian.Uint32(b[eventLineSeqno:]),
	}
	if e.id != eventRising && e.id != eventFalling {
		return rawEvent{}, fmt.Errorf("gpiocdev: event id %d is neither rising (1) nor falling (2)", e.id)
	}
	return e, nil
}

func encodeEvent(e rawEvent) []byte {
	b := make([]byte, eventSize)
	nativeEndian.PutUint64(b[eventTimestamp:], e.timestampNs)
	nativeEndian.PutUint32(b[eventID:], e.id)
	nativeEndian.PutUint32(b[eventOffset:], e.offset)
	nativeEndian.PutUint32(b[eventSeqno:], e.seqno)
	nativeEndian.PutUint32(b[eventLineSeqno:], e.lineSeqno)
	return b
}

// lineValues is struct gpio_v2_line_values.
func encodeValues(bits, mask uint64) []byte {
	b := make([]byte, lineValuesSize)
	nativeEndian.PutUint64(b[valuesBits:], bits)
	nativeEndian.PutUint64(b[valuesMask:], mask)
	return b
}

func decodeValues(b []byte) (bits, mask uint64, err error) {
	if len(b) < lineValuesSize {
		return 0, 0, errShort
	}
	return nativeEndian.Uint64(b[valuesBits:]), nativeEndian.Uint64(b[valuesMask:]), nil
}
