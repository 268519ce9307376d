package hardware

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/spi"

	"github.com/fieldcol/fieldcol/internal/hardware/mcp3008"
)

func TestBusSerializesAndBoundsTransfers(t *testing.T) {
	b := newSerialBus("test")
	defer func() { require.NoError(t, b.close()) }()

	var mu sync.Mutex
	running, maxRunning := 0, 0
	transfer := func() error {
		mu.Lock()
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		op := newBusOp(b, transfer)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				assert.NoError(t, op.do(context.Background(), time.Second))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, maxRunning, "one transfer at a time on a bus")

	// A hung transfer: its caller gives up at the timeout, the next caller of the same
	// device is told at once, other devices wait for the bus at most their timeout, and
	// the bus comes back when the transfer returns.
	release := make(chan struct{})
	hung := newBusOp(b, func() error { <-release; return nil })
	err := hung.do(context.Background(), 10*time.Millisecond)
	assert.Equal(t, ErrorTimeout, ErrorTypeOf(err))
	err = hung.do(context.Background(), time.Second)
	assert.ErrorContains(t, err, "the previous transfer is still running")
	other := newBusOp(b, func() error { return nil })
	err = other.do(context.Background(), 10*time.Millisecond)
	assert.ErrorContains(t, err, "waiting for bus test")
	close(release)
	assert.Eventually(t, func() bool { return other.do(context.Background(), 10*time.Millisecond) == nil },
		time.Second, time.Millisecond)
	assert.NoError(t, hung.do(context.Background(), time.Second), "the late result is consumed, the device works again")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	blocked := newBusOp(b, func() error { return nil })
	// With the caller's context already done, the request may or may not reach the worker
	// first; either way the call returns promptly and without a result it cannot trust.
	if err := blocked.do(ctx, time.Second); err != nil {
		assert.Equal(t, ErrorTimeout, ErrorTypeOf(err))
	}
}

// fixedConn is an SPI connection that answers every transfer with the same bytes and
// allocates nothing, to measure the driver and the bus alone.
type fixedConn struct{ r [3]byte }

func (f *fixedConn) String() string                 { return "fixed" }
func (f *fixedConn) Duplex() conn.Duplex            { return conn.Full }
func (f *fixedConn) TxPackets(p []spi.Packet) error { return errors.New("unused") }
func (f *fixedConn) Tx(w, r []byte) error {
	copy(r, f.r[:])
	return nil
}

// BenchmarkPeriphMCP3008Read is one read through the periph path (front, bus worker,
// MCP3008 driver): a control loop on real hardware reads like this every cycle.
func BenchmarkPeriphMCP3008Read(b *testing.B) {
	bus := newSerialBus("bench")
	defer func() { _ = bus.close() }()
	port := &spiBus{serialBus: bus, adc: mcp3008.New(&fixedConn{r: [3]byte{0, 2, 0}}, 3.3), vref: 3.3}
	f := &front{info: Info{Name: "pot"}, cfg: DeviceConfig{Name: "pot", Kind: KindMCP3008}, timeout: time.Second,
		slot: &faultSlot{}, clock: wallClock{}}
	dev := &analogDev{front: f, raw: newMCPChannel(port, 0)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := dev.ReadVoltage(ctx); err != nil || v != 1.65 {
			b.Fatal(v, err)
		}
	}
}
