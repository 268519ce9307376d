package periph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// A DS18B20 (and the rest of the w1_therm family) is read through the kernel's w1_therm
// driver in sysfs, not through a 1-wire master in user space: the kernel selects the
// sensor, starts the conversion with the strong pull-up a parasite-powered sensor needs,
// sleeps the conversion time, reads the scratchpad and checks its CRC. A read of the
// `temperature` attribute therefore blocks for a whole conversion. The attributes used
// here are those of Documentation/ABI/testing/sysfs-driver-w1_therm (kernel 5.9 and
// later: temperature, resolution, conv_time); `w1_slave` is the older interface.

// w1Devices is where the kernel's w1 bus lists its slaves, one directory per sensor named
// like 28-0000075b4a2f; a variable so that tests use a temporary tree.
var w1Devices = "/sys/bus/w1/devices"

var (
	// errW1NoReading: the attribute read back empty. temperature_show and w1_slave_show
	// return no bytes, not an errno, when the conversion or the scratchpad read failed: no
	// presence pulse, or the CRC wrong on every one of the kernel's tries.
	errW1NoReading = errors.New("the kernel read no temperature: the sensor did not answer, or failed its CRC on every try (see dmesg)")
	// ErrW1CRC: an older kernel's w1_slave with "crc=.. NO": it prints what it read anyway.
	ErrW1CRC = errors.New("the scratchpad failed its CRC check (crc=.. NO): noise on the bus, a long cable or a weak pull-up")
)

// w1MaxMilli bounds a w1_therm temperature: a DS18B20's 16-bit register holds at most
// ±2048 °C, so anything beyond is not something the kernel computed from a sensor.
const w1MaxMilli = 2048000

// ParseW1Temperature parses w1_therm's temperature attribute: millidegrees Celsius and a
// newline; an empty read is the kernel's failed conversion. The hardware probe reads the
// same files.
func ParseW1Temperature(b []byte) (float64, error) {
	s := bytes.TrimSpace(b)
	if len(s) == 0 {
		return 0, errW1NoReading
	}
	return parseMilli(s)
}

// ParseW1Slave parses the w1_slave attribute (errors.Is ErrW1CRC when the kernel found the
// CRC bad):
//
//	72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//	72 01 4b 46 7f ff 0e 10 57 t=23125
func ParseW1Slave(b []byte) (float64, error) {
	s := bytes.TrimSpace(b)
	if len(s) == 0 {
		return 0, errW1NoReading
	}
	first, second, ok := bytes.Cut(s, []byte("\n"))
	if !ok {
		return 0, fmt.Errorf("w1_slave %q: want two lines, the CRC verdict and t=", s)
	}
	first = bytes.TrimSpace(first)
	if !bytes.Contains(first, []byte("crc=")) {
		return 0, fmt.Errorf("w1_slave %q: no crc= verdict on the first line", first)
	}
	switch {
	case bytes.HasSuffix(first, []byte(" YES")):
	case bytes.HasSuffix(first, []byte(" NO")):
		return 0, ErrW1CRC
	default:
		return 0, fmt.Errorf("w1_slave %q: the CRC verdict is neither YES nor NO", first)
	}
	i := bytes.Index(second, []byte("t="))
	if i < 0 {
		return 0, fmt.Errorf("w1_slave %q: no t= on the second line", second)
	}
	return parseMilli(bytes.TrimSpace(second[i+2:]))
}

func parseMilli(s []byte) (float64, error) {
	c, err := ParseMilliCelsius(s)
	if err != nil {
		return 0, err
	}
	if n := c * 1000; n < -w1MaxMilli || n > w1MaxMilli {
		return 0, fmt.Errorf("temperature %g m°C is beyond what a w1_therm sensor can hold", n)
	}
	return c, nil
}

// w1Therm is one thermometer read through the kernel's w1_therm driver. Its reads run on a
// worker of its own: a read blocked in the kernel keeps that worker until it returns, and
// meanwhile every read of this sensor times out at once instead of adding another blocked
// goroutine (busOp's in-flight rule), while other sensors go on.
type w1Therm struct {
	name    string // the configured device name, for its errors
	id      string // the kernel's name, 28-0000075b4a2f
	dir     string
	path    string // the attribute read: temperature, or w1_slave before kernel 5.9
	parse   func([]byte) (float64, error)
	bits    int           // configured resolution, 0 = leave the sensor as it is
	slow    time.Duration // a read that takes longer than this is suspect (see transfer)
	kernCnv time.Duration // the kernel's conv_time, 0 when the kernel has none
	worker  *serialBus
	op      *busOp

	// Touched by the worker only.
	buf     []byte
	v       float64
	recheck bool
}

// openW1Therm finds dc's sensor in sysfs, applies its resolution and reads the kernel's
// conversion time. The set-up runs on the sensor's worker with a read's timeout.
func openW1Therm(dc *hardware.DeviceConfig) (*w1Therm, error) {
	id := hardware.FormatROM(dc.OneWireAddress())
	dir := filepath.Join(w1Devices, id)
	w := &w1Therm{name: dc.Name, id: id, dir: dir, bits: dc.Resolution, slow: hardware.ConversionTime(*dc) + hardware.W1ReadMargin, buf: make([]byte, 256)}
	if _, err := os.Stat(dir); err != nil {
		return nil, w1Missing(id, err)
	}
	switch {
	case exists(filepath.Join(dir, "temperature")):
		w.path, w.parse = filepath.Join(dir, "temperature"), ParseW1Temperature
	case exists(filepath.Join(dir, "w1_slave")):
		w.path, w.parse = filepath.Join(dir, "w1_slave"), ParseW1Slave
	default:
		return nil, fmt.Errorf("%s has neither temperature nor w1_slave: the kernel's w1_therm driver does not handle it (is it a thermometer? is the w1_therm module loaded?)", dir)
	}
	w.worker = newSerialBus("w1 " + id)
	w.op = newBusOp(w.worker, w.transfer)
	var conv time.Duration
	err := w.worker.once(w.slow, func() error {
		if w.bits != 0 {
			if err := w.applyResolution(); err != nil {
				return err
			}
		}
		conv = w.convTime()
		return nil
	})
	if err != nil {
		_ = w.worker.close()
		return nil, err
	}
	w.kernCnv = conv
	return w, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// w1Missing explains a sensor that is not under /sys/bus/w1/devices, naming those that are.
func w1Missing(id string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("1-wire sensor %s: %w", id, err)
	}
	entries, derr := os.ReadDir(w1Devices)
	if derr != nil {
		return fmt.Errorf("1-wire sensor %s: no %s: the kernel's 1-wire driver is not loaded (add dtoverlay=w1-gpio to /boot/firmware/config.txt and reboot)", id, w1Devices)
	}
	var present []string
	for _, e := range entries {
		if n := e.Name(); len(n) == 15 && n[2] == '-' {
			present = append(present, n)
		}
	}
	if len(present) == 0 {
		return fmt.Errorf("1-wire sensor %s is not on the bus, and no other sensor is (check the wiring: data on GPIO4 unless dtoverlay=w1-gpio,gpiopin= says otherwise, a 4.7 kΩ pull-up to 3.3 V)", id)
	}
	return fmt.Errorf("1-wire sensor %s is not on the bus; the kernel sees %s", id, strings.Join(present, ", "))
}

// readAttr reads a whole sysfs attribute into buf.
func readAttr(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// Nothing was written: a failed close loses nothing.
	defer func() { _ = f.Close() }()
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return buf[:n], nil
}

// applyResolution makes the sensor convert at w.bits. The kernel reads the resolution
// from the sensor's scratchpad; it is written only when it differs, so that a sensor
// whose EEPROM already holds it needs no write access to the root-owned attribute. The
// written value is read back: kernels before 5.11 accept every write and only log a
// failure. A kernel without the attribute (before 5.9) is trusted to be set as configured.
func (w *w1Therm) applyResolution() error {
	path := filepath.Join(w.dir, "resolution")
	cur, err := readAttr(path, w.buf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resolution: reading %s: %w", path, err)
	}
	if n, err := strconv.Atoi(string(bytes.TrimSpace(cur))); err == nil && n == w.bits {
		return nil
	}
	if err := writeAttr(path, strconv.Itoa(w.bits)); err != nil {
		hint := "see dmesg"
		if errors.Is(err, fs.ErrPermission) {
			hint = fmt.Sprintf("the attribute is root's: save the resolution in the sensor's EEPROM once, as root: echo %d > %s; echo save > %s",
				w.bits, path, filepath.Join(w.dir, "eeprom_cmd"))
		}
		return fmt.Errorf("resolution: writing %d to %s: %w (%s)", w.bits, path, err, hint)
	}
	got, err := readAttr(path, w.buf)
	if err != nil {
		return fmt.Errorf("resolution: reading back %s: %w", path, err)
	}
	if n, err := strconv.Atoi(string(bytes.TrimSpace(got))); err != nil || n != w.bits {
		return fmt.Errorf("resolution: wrote %d to %s but the sensor reports %q (see dmesg)", w.bits, path, bytes.TrimSpace(got))
	}
	return nil
}

func writeAttr(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// convTime is the kernel's conversion wait in ms (the conv_time attribute, kernel 5.10
// and later), 0 when it has none or it is not a positive number.
func (w *w1Therm) convTime() time.Duration {
	b, err := readAttr(filepath.Join(w.dir, "conv_time"), w.buf)
	if err != nil {
		return 0
	}
	ms, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || ms <= 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// transfer reads one temperature. After a read that failed or took longer than a read at
// the configured resolution can, the resolution is checked first: a sensor that lost
// power comes back at the resolution in its EEPROM, and the kernel, finding it again,
// then waits the longer conversion on every read.
func (w *w1Therm) transfer() error {
	start := time.Now()
	if w.recheck && w.bits != 0 {
		if err := w.applyResolution(); err != nil {
			return err
		}
	}
	v, err := w.readOnce()
	w.recheck = err != nil || time.Since(start) > w.slow
	if err != nil {
		return err
	}
	w.v = v
	return nil
}

func (w *w1Therm) readOnce() (float64, error) {
	b, err := readAttr(w.path, w.buf)
	if errors.Is(err, fs.ErrNotExist) {
		// The kernel removes the directory when the sensor stops answering its searches.
		return 0, &hardware.Error{Device: w.name, Type: hardware.ErrorNack, Err: fmt.Errorf("1-wire sensor %s is gone from %s (disconnected?)", w.id, w1Devices)}
	}
	if err != nil {
		// An errno from the kernel (EIO, EINTR ...) is classified by ErrorTypeOf.
		return 0, fmt.Errorf("reading %s: %w", w.path, err)
	}
	v, err := w.parse(b)
	switch {
	case errors.Is(err, errW1NoReading), errors.Is(err, ErrW1CRC):
		// The kernel had an EIO (CRC) or ENODEV (no presence pulse) it did not pass on;
		// the sensor is still on the bus, so the transfer is what failed.
		return 0, &hardware.Error{Device: w.name, Type: hardware.ErrorIO, Err: fmt.Errorf("%s: %w", w.path, err)}
	case err != nil:
		return 0, &hardware.Error{Device: w.name, Type: hardware.ErrorInvalid, Err: fmt.Errorf("%s: %w", w.path, err)}
	}
	return v, nil
}

func (w *w1Therm) ReadRaw(ctx context.Context, timeout time.Duration) (float64, error) {
	if err := w.op.do(ctx, timeout); err != nil {
		if w.kernCnv > 0 && w.kernCnv >= timeout && errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("%w (the kernel waits %s for each conversion of %s, its conv_time: match resolution to the sensor)", err, w.kernCnv, w.id)
		}
		return 0, err
	}
	return w.v, nil
}

// close stops the worker once a read still blocked in the kernel returns.
func (w *w1Therm) close() error { return w.worker.close() }
