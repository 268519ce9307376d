package periph

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// The w1_therm tests run the periph backend against a temporary tree laid out like
// /sys/bus/w1/devices: one directory per sensor with the kernel's attributes as files.

const (
	w1ID = "28-0000075b4a2f"
	// What an older kernel's w1_slave shows for 23.125 °C.
	w1SlaveYes = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
	w1SlaveNo  = "72 01 4b 46 7f ff 0e 10 57 : crc=a1 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
)

// fakeW1 points w1Devices at a temporary tree for the test.
func fakeW1(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	orig := w1Devices
	w1Devices = root
	t.Cleanup(func() { w1Devices = orig })
	return root
}

// w1Sensor creates a sensor directory holding attrs.
func w1Sensor(t *testing.T, root, id string, attrs map[string]string) string {
	t.Helper()
	dir := filepath.Join(root, id)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, v := range attrs {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644))
	}
	return dir
}

func readAt(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestW1ThermReads(t *testing.T) {
	tests := []struct {
		name    string
		attrs   map[string]string
		want    float64
		wantErr hardware.ErrorType
	}{
		{"temperature", map[string]string{"temperature": "23125\n"}, 23.125, ""},
		{"below zero", map[string]string{"temperature": "-10062\n"}, -10.062, ""},
		{"temperature before w1_slave", map[string]string{"temperature": "19500\n", "w1_slave": w1SlaveYes}, 19.5, ""},
		{"w1_slave on an old kernel", map[string]string{"w1_slave": w1SlaveYes}, 23.125, ""},
		// The kernel shows nothing when the sensor did not answer or failed every CRC.
		{"empty temperature", map[string]string{"temperature": ""}, 0, hardware.ErrorIO},
		{"empty w1_slave", map[string]string{"w1_slave": ""}, 0, hardware.ErrorIO},
		{"w1_slave crc NO", map[string]string{"w1_slave": w1SlaveNo}, 0, hardware.ErrorIO},
		{"garbage", map[string]string{"temperature": "banana\n"}, 0, hardware.ErrorInvalid},
		{"beyond any sensor", map[string]string{"temperature": "99999999\n"}, 0, hardware.ErrorInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w1Sensor(t, fakeW1(t), w1ID, tt.attrs)
			s := openPeriph(t, hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID})
			tank, err := s.TemperatureInput("tank")
			require.NoError(t, err)
			assert.Equal(t, "onewire1/"+w1ID, tank.Info().ID)
			v, err := tank.ReadTemperature(ctx)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, hardware.ErrorTypeOf(err), err.Error())
				assert.Contains(t, err.Error(), `device "tank"`)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.want, v, 1e-9)
		})
	}
}

// Both ways of naming the sensor find the same directory: the kernel's name (any case)
// and the 64-bit ROM code with its CRC byte.
func TestW1ThermNamedByROMOrAddress(t *testing.T) {
	w1Sensor(t, fakeW1(t), w1ID, map[string]string{"temperature": "21000\n"})
	s := openPeriph(t,
		hardware.DeviceConfig{Name: "a", Kind: hardware.KindDS18B20, ROM: "28-0000075B4A2F"},
		hardware.DeviceConfig{Name: "b", Kind: hardware.KindDS18B20, Address: 0xee0000075b4a2f28, Bus: "2"},
	)
	for _, name := range []string{"a", "b"} {
		d, err := s.TemperatureInput(name)
		require.NoError(t, err)
		v, err := d.ReadTemperature(ctx)
		require.NoError(t, err, name)
		assert.InDelta(t, 21.0, v, 1e-9, name)
	}
}

func TestW1ThermReadErrors(t *testing.T) {
	root := fakeW1(t)
	dir := w1Sensor(t, root, w1ID, map[string]string{"temperature": "20000\n"})
	s := openPeriph(t, hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID})
	tank, err := s.TemperatureInput("tank")
	require.NoError(t, err)
	_, err = tank.ReadTemperature(ctx)
	require.NoError(t, err)

	// An errno from the kernel's read is an error, not a value.
	require.NoError(t, os.Remove(filepath.Join(dir, "temperature")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "temperature"), 0o755))
	_, err = tank.ReadTemperature(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.EISDIR)
	assert.Equal(t, hardware.ErrorIO, hardware.ErrorTypeOf(err))

	// The kernel removes a sensor that stopped answering its searches.
	require.NoError(t, os.RemoveAll(dir))
	_, err = tank.ReadTemperature(ctx)
	require.Error(t, err)
	assert.Equal(t, hardware.ErrorNack, hardware.ErrorTypeOf(err))
	assert.Contains(t, err.Error(), "1-wire sensor "+w1ID+" is gone")
}

func TestW1ThermOpenErrors(t *testing.T) {
	open := func(dc hardware.DeviceConfig) error {
		return openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{dc}})
	}
	dc := hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID}

	root := fakeW1(t)
	w1Devices = filepath.Join(root, "absent")
	err := open(dc)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `device "tank" (ds18b20 at onewire1/`+w1ID+`)`)
	assert.Contains(t, err.Error(), "the kernel's 1-wire driver is not loaded (add dtoverlay=w1-gpio")

	w1Devices = root
	require.NoError(t, os.Symlink(".", filepath.Join(root, "w1_bus_master1")))
	assert.ErrorContains(t, open(dc), "1-wire sensor "+w1ID+" is not on the bus, and no other sensor is (check the wiring")

	w1Sensor(t, root, "28-000000000001", map[string]string{"temperature": "1\n"})
	w1Sensor(t, root, "10-000801b59fbc", map[string]string{"temperature": "1\n"})
	assert.ErrorContains(t, open(dc), "1-wire sensor "+w1ID+" is not on the bus; the kernel sees 10-000801b59fbc, 28-000000000001")

	w1Sensor(t, root, w1ID, map[string]string{"name": w1ID})
	assert.ErrorContains(t, open(dc), "has neither temperature nor w1_slave")
}

// A read blocked in the kernel is abandoned after the timeout; while it stays blocked,
// every further read fails at once and no goroutine is added; once it returns, reads
// work again. The blocking read is a FIFO nobody writes to.
func TestW1ThermBlockedReadTimesOut(t *testing.T) {
	root := fakeW1(t)
	dir := w1Sensor(t, root, w1ID, map[string]string{"resolution": "9\n"})
	fifo := filepath.Join(dir, "temperature")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	// Held open for writing so that the reader's open returns and its read blocks.
	holder, err := os.OpenFile(fifo, os.O_RDWR, 0)
	require.NoError(t, err)
	release := func() {
		_, _ = holder.WriteString("21500\n")
		_ = holder.Close()
	}
	t.Cleanup(release)

	s := openPeriph(t, hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID, Resolution: 9, Timeout: 150 * time.Millisecond})
	tank, err := s.TemperatureInput("tank")
	require.NoError(t, err)

	began := time.Now()
	_, err = tank.ReadTemperature(ctx)
	assert.Equal(t, hardware.ErrorTimeout, hardware.ErrorTypeOf(err), err)
	took := time.Since(began)
	assert.GreaterOrEqual(t, took, 150*time.Millisecond)
	assert.Less(t, took, time.Second)

	goroutines := runtime.NumGoroutine()
	for range 20 {
		began := time.Now()
		_, err = tank.ReadTemperature(ctx)
		assert.Equal(t, hardware.ErrorTimeout, hardware.ErrorTypeOf(err), err)
		assert.Contains(t, err.Error(), "the previous transfer is still running")
		assert.Less(t, time.Since(began), 100*time.Millisecond, "a read behind a blocked one fails at once, not after its 150ms timeout")
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), goroutines, "reads behind a blocked one start no goroutine")

	// The sensor answers again: a plain file replaces the FIFO, then the blocked read returns.
	tmp := filepath.Join(dir, "temperature.new")
	require.NoError(t, os.WriteFile(tmp, []byte("22000\n"), 0o644))
	require.NoError(t, os.Rename(tmp, fifo))
	release()
	assert.Eventually(t, func() bool {
		v, err := tank.ReadTemperature(ctx)
		return err == nil && v == 22.0
	}, 2*time.Second, 10*time.Millisecond, "the late result is dropped and the next read succeeds")
}

func TestW1ThermResolution(t *testing.T) {
	t.Run("written when it differs", func(t *testing.T) {
		dir := w1Sensor(t, fakeW1(t), w1ID, map[string]string{"temperature": "20000\n", "resolution": "12\n", "conv_time": "190\n"})
		w, err := openW1Therm(&hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID, Resolution: 10})
		require.NoError(t, err)
		t.Cleanup(func() { _ = w.close() })
		assert.Equal(t, "10", readAt(t, filepath.Join(dir, "resolution")))
		assert.Equal(t, 190*time.Millisecond, w.kernCnv, "conv_time read at open")
	})
	t.Run("left alone when it matches", func(t *testing.T) {
		dir := w1Sensor(t, fakeW1(t), w1ID, map[string]string{"temperature": "20000\n", "resolution": "9\n"})
		w, err := openW1Therm(&hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID, Resolution: 9})
		require.NoError(t, err)
		t.Cleanup(func() { _ = w.close() })
		assert.Equal(t, "9\n", readAt(t, filepath.Join(dir, "resolution")), "not rewritten")
		assert.Zero(t, w.kernCnv, "no conv_time before kernel 5.10")
	})
	t.Run("not set: the sensor is left as it is", func(t *testing.T) {
		dir := w1Sensor(t, fakeW1(t), w1ID, map[string]string{"temperature": "20000\n", "resolution": "11\n"})
		w, err := openW1Therm(&hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID})
		require.NoError(t, err)
		t.Cleanup(func() { _ = w.close() })
		assert.Equal(t, "11\n", readAt(t, filepath.Join(dir, "resolution")))
	})
	t.Run("no attribute on an old kernel", func(t *testing.T) {
		w1Sensor(t, fakeW1(t), w1ID, map[string]string{"w1_slave": w1SlaveYes})
		w, err := openW1Therm(&hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID, Resolution: 9})
		require.NoError(t, err)
		_ = w.close()
	})
	// /proc/version takes the write and fails it with EIO, as the kernel does when the
	// sensor does not answer; /dev/null swallows it, as kernels before 5.11 did.
	for _, tt := range []struct{ target, want string }{
		{"/proc/version", "resolution: writing 10 to "},
		{"/dev/null", `resolution: wrote 10 to `},
	} {
		t.Run("failure "+tt.target, func(t *testing.T) {
			dir := w1Sensor(t, fakeW1(t), w1ID, map[string]string{"temperature": "20000\n"})
			require.NoError(t, os.Symlink(tt.target, filepath.Join(dir, "resolution")))
			err := openError(t, hardware.Config{Backend: hardware.BackendPeriph, Devices: []hardware.DeviceConfig{
				{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID, Resolution: 10},
			}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `device "tank"`)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// A sensor that lost power comes back at the resolution in its EEPROM: after a failed or
// a slow read the configured one is written again before the next.
func TestW1ThermResolutionRestoredAfterAFailure(t *testing.T) {
	dir := w1Sensor(t, fakeW1(t), w1ID, map[string]string{"temperature": "20000\n", "resolution": "12\n"})
	w, err := openW1Therm(&hardware.DeviceConfig{Name: "tank", Kind: hardware.KindDS18B20, ROM: w1ID, Resolution: 11})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.close() })
	res, temp := filepath.Join(dir, "resolution"), filepath.Join(dir, "temperature")
	require.Equal(t, "11", readAt(t, res))
	// A loaded test machine must not make a read look slow.
	w.slow = time.Hour

	require.NoError(t, os.WriteFile(res, []byte("12\n"), 0o644))
	_, err = w.ReadRaw(ctx, time.Second)
	require.NoError(t, err)
	assert.Equal(t, "12\n", readAt(t, res), "a good read checks nothing")

	require.NoError(t, os.WriteFile(temp, nil, 0o644))
	_, err = w.ReadRaw(ctx, time.Second)
	require.Equal(t, hardware.ErrorIO, hardware.ErrorTypeOf(err))
	require.NoError(t, os.WriteFile(temp, []byte("20500\n"), 0o644))
	v, err := w.ReadRaw(ctx, time.Second)
	require.NoError(t, err)
	assert.InDelta(t, 20.5, v, 1e-9)
	assert.Equal(t, "11", readAt(t, res), "restored before the read after the failure")

	// A read slower than the configured resolution allows is the other sign.
	require.NoError(t, os.WriteFile(res, []byte("12\n"), 0o644))
	w.slow = 0
	_, err = w.ReadRaw(ctx, time.Second)
	require.NoError(t, err)
	w.slow = time.Hour
	_, err = w.ReadRaw(ctx, time.Second)
	require.NoError(t, err)
	assert.Equal(t, "11", readAt(t, res), "restored after a slow read")
}

func FuzzW1Parsers(f *testing.F) {
	for _, s := range []string{"23125\n", "-10062\n", "", "\n", "abc", "99999999", w1SlaveYes, w1SlaveNo,
		"00 00 00 00 00 00 00 00 00 : crc=00 YES\nt=", ": crc=1 YES\n t=-0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, parse := range map[string]func([]byte) (float64, error){"temperature": ParseW1Temperature, "w1_slave": ParseW1Slave} {
			v, err := parse(b)
			if err != nil {
				continue
			}
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0), name)
			require.LessOrEqual(t, math.Abs(v), 2048.0, name)
			require.NotEmpty(t, strings.TrimSpace(string(b)), name)
			if name == "temperature" {
				n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
				require.NoError(t, err, "a value only from a whole number")
				require.Equal(t, float64(n)/1000, v)
			}
			if name == "w1_slave" {
				require.Contains(t, string(b), " YES", "a value only with the kernel's CRC verdict")
			}
		}
	})
}
