package probe

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/fieldcol/fieldcol/internal/hardware/gpiocdev"
	"github.com/fieldcol/fieldcol/internal/hardware/periph"
)

// A 1-Wire read that hangs is abandoned after W1Timeout: tests release it before they end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tree is a fake root: files relative to it, created with their parents.
type tree struct {
	t    *testing.T
	root string
}

func newTree(t *testing.T) *tree { return &tree{t: t, root: t.TempDir()} }

func (tr *tree) file(rel, content string) string {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	require.NoError(tr.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(tr.t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func (tr *tree) dir(rel string) {
	tr.t.Helper()
	require.NoError(tr.t, os.MkdirAll(filepath.Join(tr.root, rel), 0o755))
}

// device makes a stand-in for a device node with an owner group and mode; chown needs
// root, hence the skip in the tests that check groups.
func (tr *tree) device(rel string, gid int, mode os.FileMode) {
	tr.t.Helper()
	p := tr.file(rel, "")
	require.NoError(tr.t, os.Chmod(p, mode))
	if os.Geteuid() == 0 {
		require.NoError(tr.t, os.Chown(p, 0, gid))
	}
}

func (tr *tree) symlink(target, rel string) {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	require.NoError(tr.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(tr.t, os.Symlink(target, p))
}

// noDrivers is a periph that loaded nothing, so that a test does not depend on what the
// machine running it has (host.Init registers the host's own buses).
func noDrivers() (periph.DriverState, error) { return periph.DriverState{}, nil }

// chipsOf returns a GPIOChips function that reports chips and records the /dev directory
// it was asked about.
func chipsOf(chips []gpiocdev.ChipInfo, err error, asked *string) func(string) ([]gpiocdev.ChipInfo, error) {
	return func(devDir string) ([]gpiocdev.ChipInfo, error) {
		if asked != nil {
			*asked = devDir
		}
		return chips, err
	}
}

// chipBus is an I2C bus with a chip at each address of chips, each an i2ctest.Playback of
// what the probe is expected to do with it; every other address NACKs the way periph's
// sysfs I2C reports it. Tx records every address touched.
type chipBus struct {
	mu      sync.Mutex
	chips   map[uint16]*i2ctest.Playback
	fail    map[uint16]error
	touched []uint16
}

func (b *chipBus) String() string { return "chipBus" }

func (b *chipBus) Tx(addr uint16, w, r []byte) error {
	b.mu.Lock()
	b.touched = append(b.touched, addr)
	b.mu.Unlock()
	if err, ok := b.fail[addr]; ok {
		return err
	}
	if c, ok := b.chips[addr]; ok {
		return c.Tx(addr, w, r)
	}
	return fmt.Errorf("sysfs-i2c: %v", syscall.EREMOTEIO)
}

func (b *chipBus) SetSpeed(physic.Frequency) error { return nil }

func (b *chipBus) Close() error { return nil }

// done checks that every chip saw exactly the transfers it expected.
func (b *chipBus) done(t *testing.T) {
	t.Helper()
	for addr, c := range b.chips {
		require.NoError(t, c.Close(), "chip at %s", hexAddr(addr))
	}
}

func (b *chipBus) wasTouched(addr uint16) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.touched {
		if a == addr {
			return true
		}
	}
	return false
}

// registerBus registers bus in periph's i2creg as I2C<n>, number n, as periph's sysfs
// driver registers /dev/i2c-<n>.
func registerBus(t *testing.T, n int, bus i2c.BusCloser) {
	t.Helper()
	name := fmt.Sprintf("fake-i2c-%d", n)
	require.NoError(t, i2creg.Register(name, []string{fmt.Sprintf("I2C%d", n)}, n, func() (i2c.BusCloser, error) { return bus, nil }))
	t.Cleanup(func() { require.NoError(t, i2creg.Unregister(name)) })
}

func registerPins(t *testing.T, names ...string) {
	t.Helper()
	for i, n := range names {
		require.NoError(t, gpioreg.Register(&gpiotest.Pin{N: n, Num: 1000 + i}))
	}
	t.Cleanup(func() {
		for _, n := range names {
			require.NoError(t, gpioreg.Unregister(n))
		}
	})
}

// ident answers a scan read and then the MCP9808's ID registers.
func mcp9808(addr uint16, manufacturer []byte, device []byte) *i2ctest.Playback {
	ops := []i2ctest.IO{{Addr: addr, R: []byte{0xc1}}, {Addr: addr, W: []byte{0x06}, R: manufacturer}}
	if device != nil {
		ops = append(ops, i2ctest.IO{Addr: addr, W: []byte{0x07}, R: device})
	}
	return &i2ctest.Playback{Ops: ops, DontPanic: true}
}

// answers is a chip that answers the scan read and nothing else.
func answers(addr uint16) *i2ctest.Playback {
	return &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: addr, R: []byte{0x00}}}, DontPanic: true}
}
