package gpiocdev

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeEvent feeds arbitrary bytes to the event decoder: it must never panic, must
// refuse what is not a whole event with a known id, and what it accepts must encode back
// to the same fields.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(encodeEvent(rawEvent{timestampNs: 123456789, id: eventRising, offset: 17, seqno: 1, lineSeqno: 1}))
	f.Add(encodeEvent(rawEvent{id: eventFalling, offset: 4, seqno: 0xffffffff, lineSeqno: 0xffffffff}))
	f.Add(make([]byte, eventSize))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b)
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, len(b), eventSize)
		require.Contains(t, []uint32{eventRising, eventFalling}, e.id)
		again, err := decodeEvent(encodeEvent(e))
		require.NoError(t, err)
		assert.Equal(t, e, again)
	})
}

// FuzzDecodeLineInfo does the same for struct gpio_v2_line_info and gpiochip_info: names
// stop at the first NUL or the field's end, at most 10 attributes are read.
func FuzzDecodeLineInfo(f *testing.F) {
	b, err := encodeLineInfo(lineInfo{name: "GPIO17", consumer: Consumer, offset: 17,
		flags: flagUsed | flagInput | flagEdgeRising, attrs: []attribute{{id: attrDebounce, value: 5000}}})
	require.NoError(f, err)
	f.Add(b)
	full := make([]byte, infoSize)
	for i := range full {
		full[i] = 'x'
	}
	f.Add(full)
	f.Add(encodeChipInfo(chipInfo{name: "gpiochip0", label: "pinctrl-rp1", lines: 54}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeChipInfo(b); err == nil {
			require.LessOrEqual(t, len(c.name), maxNameSize)
			require.LessOrEqual(t, len(c.label), maxNameSize)
		}
		l, err := decodeLineInfo(b)
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(l.attrs), maxAttrs)
		require.LessOrEqual(t, len(l.name), maxNameSize)
		_ = l.debounce()
		if len(l.name) < maxNameSize && len(l.consumer) < maxNameSize {
			enc, err := encodeLineInfo(l)
			require.NoError(t, err)
			again, err := decodeLineInfo(enc)
			require.NoError(t, err)
			assert.Equal(t, l, again)
		}
	})
}

// FuzzDecodeLineRequest checks the fake kernel's request decoder, which refuses malformed
// requests the way the kernel does, and that every request Request builds decodes back.
func FuzzDecodeLineRequest(f *testing.F) {
	for _, cfg := range []LineConfig{
		{Offset: 17, Output: true, Value: true, ActiveLow: true},
		{Offset: 4, Bias: BiasPullUp, Edge: EdgeBoth, Debounce: 5000000, EventBufferSize: 1024},
	} {
		r, err := cfg.request()
		require.NoError(f, err)
		b, err := encodeLineRequest(r)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add(make([]byte, reqSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeLineRequest(b)
		if err != nil {
			return
		}
		require.NotEmpty(t, r.offsets)
		require.LessOrEqual(t, len(r.offsets), maxLines)
		require.LessOrEqual(t, len(r.attrs), maxAttrs)
		_ = checkFlags(r.flags)
	})
}
