package gpiocdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lineNames returns n line names GPIO0.. with the given overrides.
func lineNames(n int, override map[int]string) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("GPIO%d", i)
		if o, ok := override[i]; ok {
			names[i] = o
		}
	}
	return names
}

// fakeDev makes a /dev with the named chip files and a fake kernel behind them.
func fakeDev(t *testing.T, chips map[string]FakeChip) (string, *FakeKernel, Host) {
	t.Helper()
	dir := t.TempDir()
	k := NewFakeKernel()
	for name, c := range chips {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, nil, 0o600))
		k.AddChip(p, c)
	}
	return dir, k, Host{Kernel: k}
}

// pi4 is a Raspberry Pi 4's chips: the header chip names GPIO7 SPI_CE1_N, and the
// firmware's expander chip has names of its own.
func pi4(t *testing.T) (string, *FakeKernel, Host) {
	return fakeDev(t, map[string]FakeChip{
		"gpiochip0": {Name: "gpiochip0", Label: "pinctrl-bcm2711", Lines: lineNames(58, map[int]string{0: "ID_SDA", 7: "SPI_CE1_N"})},
		"gpiochip1": {Name: "gpiochip1", Label: "raspberrypi-exp-gpio", Lines: []string{"BT_ON", "WL_ON", "PWR_LED_OFF"}},
	})
}

func TestChipsListsChipsAndLines(t *testing.T) {
	dev, k, h := pi4(t)
	require.NoError(t, os.WriteFile(filepath.Join(dev, "gpiochipX"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dev, "gpiomem"), nil, 0o600))
	k.Claim(filepath.Join(dev, "gpiochip1"), 2, "led0")
	l, err := h.Request(filepath.Join(dev, "gpiochip0"), LineConfig{Offset: 17, Output: true})
	require.NoError(t, err)
	defer l.Close()

	chips, err := h.Chips(dev)
	require.NoError(t, err)
	require.Len(t, chips, 2)
	assert.Equal(t, "gpiochip0", chips[0].Name)
	assert.Equal(t, "pinctrl-bcm2711", chips[0].Label)
	assert.Equal(t, filepath.Join(dev, "gpiochip0"), chips[0].Path)
	require.Len(t, chips[0].Lines, 58)
	assert.Equal(t, LineInfo{Offset: 17, Name: "GPIO17", Consumer: Consumer, Used: true, Output: true}, chips[0].Lines[17])
	assert.Equal(t, LineInfo{Offset: 7, Name: "SPI_CE1_N"}, chips[0].Lines[7])
	assert.Equal(t, LineInfo{Offset: 2, Name: "PWR_LED_OFF", Consumer: "led0", Used: true}, chips[1].Lines[2])
}

func TestChipPathsInNumberOrder(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"gpiochip10", "gpiochip2", "gpiochip0", "gpiochip", "gpiochip-1", "ttyAMA0"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), nil, 0o600))
	}
	paths, err := ChipPaths(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "gpiochip0"), filepath.Join(dir, "gpiochip2"), filepath.Join(dir, "gpiochip10")}, paths)

	paths, err = ChipPaths(filepath.Join(dir, "absent"))
	require.NoError(t, err, "a host without the directory has no chips")
	assert.Empty(t, paths)
}

// A chip that cannot be opened is reported by path, the others are still listed.
func TestChipsReportsUnreadableChips(t *testing.T) {
	dev, _, h := fakeDev(t, map[string]FakeChip{
		"gpiochip0": {Name: "gpiochip0", Label: "pinctrl-rp1", Lines: lineNames(54, nil)},
		"gpiochip1": {Name: "gpiochip1", Label: "rp1-aux", Lines: []string{"A"}, OpenErr: syscall.EACCES},
	})
	chips, err := h.Chips(dev)
	require.Len(t, chips, 1)
	assert.Equal(t, "pinctrl-rp1", chips[0].Label)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(dev, "gpiochip1"))
	assert.ErrorIs(t, err, syscall.EACCES)
}

func TestFind(t *testing.T) {
	dev, _, h := pi4(t)
	tests := []struct {
		name    string
		chip    string
		offset  int
		wantErr string
	}{
		{name: "GPIO17", chip: "gpiochip0", offset: 17},
		{name: "SPI_CE1_N", chip: "gpiochip0", offset: 7},
		{name: "GPIO7", chip: "gpiochip0", offset: 7}, // by BCM number on the header chip
		{name: "GPIO0", chip: "gpiochip0", offset: 0}, // named ID_SDA
		{name: "WL_ON", chip: "gpiochip1", offset: 1}, // a line of another chip
		{name: "GPIO99", wantErr: `no GPIO line named "GPIO99" on gpiochip0 (pinctrl-bcm2711, 58 lines), gpiochip1 (raspberrypi-exp-gpio, 3 lines)`},
		{name: "GPIOx", wantErr: `no GPIO line named "GPIOx"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chip, off, err := h.Find(dev, tt.name)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(dev, tt.chip), chip)
			assert.Equal(t, tt.offset, off)
		})
	}
}

// On a Pi 5 with an older kernel the header is gpiochip4; the other chips come first in
// number order and some of them carry GPIO names too.
func TestFindPrefersTheHeaderChip(t *testing.T) {
	dev, _, h := fakeDev(t, map[string]FakeChip{
		"gpiochip0": {Name: "gpiochip0", Label: "gpio-brcmstb@107d508500", Lines: lineNames(32, nil)},
		"gpiochip4": {Name: "gpiochip4", Label: "pinctrl-rp1", Lines: lineNames(54, nil)},
	})
	chip, off, err := h.Find(dev, "GPIO17")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dev, "gpiochip4"), chip)
	assert.Equal(t, 17, off)
}

func TestFindWithoutChips(t *testing.T) {
	_, _, err := Host{Kernel: NewFakeKernel()}.Find(t.TempDir(), "GPIO17")
	require.ErrorContains(t, err, "no gpiochip in")
}

// An output is driven to its initial value by the request itself: the first level the
// kernel ever drives is the requested one.
func TestRequestOutputInitialValue(t *testing.T) {
	dev, k, h := pi4(t)
	chip := filepath.Join(dev, "gpiochip0")
	tests := []struct {
		name      string
		value     bool
		activeLow bool
		wire      bool
	}{
		{"low", false, false, false},
		{"high", true, false, true},
		{"active low off", false, true, true},
		{"active low on", true, true, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off := 20 + i
			l, err := h.Request(chip, LineConfig{Offset: off, Output: true, Value: tt.value, ActiveLow: tt.activeLow})
			require.NoError(t, err)
			assert.Equal(t, []bool{tt.wire}, k.History(chip, off))
			info := k.Request(chip, off)
			assert.True(t, info.Output)
			assert.Equal(t, Consumer, info.Consumer)
			assert.Equal(t, tt.activeLow, info.ActiveLow)
			v, err := l.Value()
			require.NoError(t, err)
			assert.Equal(t, tt.value, v, "Value is logical")

			require.NoError(t, l.Set(!tt.value))
			assert.Equal(t, []bool{tt.wire, !tt.wire}, k.History(chip, off))
			require.NoError(t, l.Close())
			require.NoError(t, l.Close(), "Close is idempotent")
			assert.False(t, k.Request(chip, off).Requested)
			assert.ErrorIs(t, l.Set(true), ErrClosed)
		})
	}
}

func TestRequestInputFlags(t *testing.T) {
	dev, k, h := pi4(t)
	chip := filepath.Join(dev, "gpiochip0")
	tests := []struct {
		cfg  LineConfig
		want FakeRequestInfo
	}{
		{LineConfig{Offset: 5, Bias: BiasPullUp, Edge: EdgeRising},
			FakeRequestInfo{Requested: true, Consumer: Consumer, PullUp: true, Rising: true, EventBuffer: 16}},
		{LineConfig{Offset: 6, Bias: BiasPullDown, Edge: EdgeFalling, ActiveLow: true, EventBufferSize: 1000},
			FakeRequestInfo{Requested: true, Consumer: Consumer, PullDown: true, Falling: true, ActiveLow: true, EventBuffer: 1024}},
		{LineConfig{Offset: 8, Bias: BiasDisabled, Edge: EdgeBoth, Debounce: 5*time.Millisecond + 1, EventBufferSize: 5000},
			FakeRequestInfo{Requested: true, Consumer: Consumer, BiasDisabled: true, Rising: true, Falling: true, DebounceMicros: 5001, EventBuffer: MaxEventBuffer}},
		{LineConfig{Offset: 9},
			FakeRequestInfo{Requested: true, Consumer: Consumer, EventBuffer: 16}},
	}
	for _, tt := range tests {
		l, err := h.Request(chip, tt.cfg)
		require.NoError(t, err)
		assert.Equal(t, tt.want, k.Request(chip, tt.cfg.Offset), "offset %d", tt.cfg.Offset)
		require.NoError(t, l.Close())
	}
}

func TestRequestRefusals(t *testing.T) {
	dev, k, h := pi4(t)
	chip := filepath.Join(dev, "gpiochip0")
	k.Claim(chip, 14, "serial")
	held, err := h.Request(chip, LineConfig{Offset: 15})
	require.NoError(t, err)
	defer held.Close()
	tests := []struct {
		name string
		cfg  LineConfig
		want string
		is   error
	}{
		{"claimed by a driver", LineConfig{Offset: 14}, "requesting line 14", syscall.EBUSY},
		{"held by us", LineConfig{Offset: 15}, "requesting line 15", syscall.EBUSY},
		{"beyond the chip", LineConfig{Offset: 58}, "requesting line 58", syscall.EINVAL},
		{"edge on an output", LineConfig{Offset: 3, Output: true, Edge: EdgeRising}, "inputs only", nil},
		{"debounce on an output", LineConfig{Offset: 3, Output: true, Debounce: time.Millisecond}, "inputs only", nil},
		{"negative debounce", LineConfig{Offset: 3, Debounce: -1}, "negative debounce", nil},
		{"negative offset", LineConfig{Offset: -1}, "out of range", nil},
		{"unknown bias", LineConfig{Offset: 3, Bias: 9}, "unknown bias", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Request(chip, tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
	_, err = h.Request(filepath.Join(dev, "gpiochip9"), LineConfig{Offset: 1})
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// Events come out in order with the kernel's line_seqno; when the buffer overflowed, the
// oldest are gone but the numbers tell how many there were.
func TestReadEventSeqnoAcrossOverflow(t *testing.T) {
	dev, k, h := pi4(t)
	chip := filepath.Join(dev, "gpiochip0")
	l, err := h.Request(chip, LineConfig{Offset: 27, Edge: EdgeRising, EventBufferSize: 4})
	require.NoError(t, err)
	defer l.Close()

	_, err = l.ReadEvent(10 * time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)

	for range 10 { // 10 rising edges, 4 fit in the buffer
		k.SetInput(chip, 27, true)
		k.SetInput(chip, 27, false)
	}
	var seqs []uint32
	for range 4 {
		ev, err := l.ReadEvent(time.Second)
		require.NoError(t, err)
		assert.True(t, ev.Rising)
		assert.Equal(t, 27, ev.Offset)
		seqs = append(seqs, ev.LineSeqno)
	}
	assert.Equal(t, []uint32{7, 8, 9, 10}, seqs)
	_, err = l.ReadEvent(10 * time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)
}

func TestReadEventActiveLowBothEdges(t *testing.T) {
	dev, k, h := pi4(t)
	chip := filepath.Join(dev, "gpiochip0")
	k.SetInput(chip, 4, true) // a pulled-up switch, open
	l, err := h.Request(chip, LineConfig{Offset: 4, ActiveLow: true, Bias: BiasPullUp, Edge: EdgeBoth})
	require.NoError(t, err)
	defer l.Close()
	v, err := l.Value()
	require.NoError(t, err)
	assert.False(t, v, "high on the wire is logical 0 when active low")
	k.SetInput(chip, 4, false) // closed: logical rising
	k.SetInput(chip, 4, true)
	ev, err := l.ReadEvent(time.Second)
	require.NoError(t, err)
	assert.True(t, ev.Rising)
	ev, err = l.ReadEvent(time.Second)
	require.NoError(t, err)
	assert.False(t, ev.Rising)
	assert.Equal(t, uint32(2), ev.LineSeqno)
}

func TestCloseEndsAWaitingRead(t *testing.T) {
	dev, _, h := pi4(t)
	l, err := h.Request(filepath.Join(dev, "gpiochip0"), LineConfig{Offset: 22, Edge: EdgeRising})
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := l.ReadEvent(0)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the reader block; the result does not depend on it
	require.NoError(t, l.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("ReadEvent did not return after Close")
	}
}

// The real kernel seam on a pipe: the request fd is made non-blocking so that a read
// honours its deadline and Close ends a read in progress.
func TestOSFileDeadlineAndClose(t *testing.T) {
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
	w := os.NewFile(uintptr(p[1]), "w")
	defer w.Close()
	f, err := osKernel{}.File(p[0], "pipe")
	require.NoError(t, err)
	l := &Line{f: f, chip: "pipe", offset: 0}

	_, err = l.ReadEvent(20 * time.Millisecond)
	require.ErrorIs(t, err, ErrTimeout)

	_, err = w.Write(append(encodeEvent(rawEvent{id: eventFalling, offset: 3, lineSeqno: 41}),
		encodeEvent(rawEvent{id: eventRising, offset: 3, lineSeqno: 42})...))
	require.NoError(t, err)
	ev, err := l.ReadEvent(time.Second)
	require.NoError(t, err)
	assert.Equal(t, Event{Rising: false, Offset: 3, LineSeqno: 41}, ev)
	ev, err = l.ReadEvent(time.Second)
	require.NoError(t, err)
	assert.Equal(t, uint32(42), ev.LineSeqno)

	done := make(chan error)
	go func() {
		_, err := l.ReadEvent(0)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, l.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("ReadEvent did not return after Close")
	}
}

// The real ioctl path returns the kernel's errno: /dev/null knows no GPIO ioctl.
func TestOSFileIoctlErrno(t *testing.T) {
	f, err := osKernel{}.Open(os.DevNull)
	require.NoError(t, err)
	defer f.Close()
	err = f.Ioctl(ioctlChipInfo, make([]byte, chipInfoSize))
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL), "%v", err)
}
