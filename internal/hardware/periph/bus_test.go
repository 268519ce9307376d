package periph

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
	"periph.io/x/conn/v3/spi/spireg"

	"github.com/fieldcol/fieldcol/internal/hardware"
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
	assert.Equal(t, hardware.ErrorTimeout, hardware.ErrorTypeOf(err))
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
		assert.Equal(t, hardware.ErrorTimeout, hardware.ErrorTypeOf(err))
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

// fixedPort is an SPI port whose connection is conn.
type fixedPort struct{ conn *fixedConn }

func (p *fixedPort) String() string                    { return "fixed" }
func (p *fixedPort) Close() error                      { return nil }
func (p *fixedPort) LimitSpeed(physic.Frequency) error { return nil }
func (p *fixedPort) Connect(physic.Frequency, spi.Mode, int) (spi.Conn, error) {
	return p.conn, nil
}

// BenchmarkPeriphMCP3008Read is one read through the periph path (front, bus worker,
// MCP3008 driver): a control loop on real hardware reads like this every cycle.
func BenchmarkPeriphMCP3008Read(b *testing.B) {
	port := &fixedPort{conn: &fixedConn{r: [3]byte{0, 2, 0}}}
	require.NoError(b, spireg.Register("FCT-BENCH", nil, -1, func() (spi.PortCloser, error) { return port, nil }))
	b.Cleanup(func() { _ = spireg.Unregister("FCT-BENCH") })
	s, err := newRegistry(nil).Open(hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
		{Name: "pot", Kind: hardware.KindMCP3008, Bus: "FCT-BENCH", Timeout: time.Second},
	}}, hardware.Settings{})
	require.NoError(b, err)
	defer func() { require.NoError(b, s.Close()) }()
	dev, err := s.AnalogInput("pot")
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v, err := dev.ReadVoltage(ctx); err != nil || v != 1.65 {
			b.Fatal(v, err)
		}
	}
}
