package periph

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fieldcol/fieldcol/internal/hardware"
)

// thermalRoot is where the kernel lists its thermal zones; a variable for tests.
var thermalRoot = "/sys/class/thermal"

// socThermal is a kernel thermal zone. The sysfs ABI gives its temperature in millidegrees
// Celsius, always; periph's sysfs sensor instead guesses the unit from the first value it
// reads, and a Pi that boots below 0.1 °C would read 1000 times off from then on.
type socThermal struct {
	path string
	op   *busOp
	buf  [32]byte
	v    float64
}

func openSoCThermal(zone int, worker *serialBus) (*socThermal, error) {
	path := filepath.Join(thermalRoot, "thermal_zone"+strconv.Itoa(zone), "temp")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("no sysfs thermal zone: %w", err)
	}
	_ = f.Close()
	s := &socThermal{path: path}
	s.op = newBusOp(worker, s.transfer)
	return s, nil
}

func (s *socThermal) transfer() error {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	n, err := f.Read(s.buf[:])
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.path, err)
	}
	s.v, err = ParseMilliCelsius(s.buf[:n])
	if err != nil {
		return &hardware.Error{Type: hardware.ErrorInvalid, Err: fmt.Errorf("%s: %w", s.path, err)}
	}
	return nil
}

func (s *socThermal) ReadRaw(ctx context.Context, timeout time.Duration) (float64, error) {
	if err := s.op.do(ctx, timeout); err != nil {
		return 0, err
	}
	return s.v, nil
}

// ParseMilliCelsius parses a thermal zone's temp file: a decimal integer of millidegrees
// Celsius and a newline.
func ParseMilliCelsius(b []byte) (float64, error) {
	t := bytes.TrimSpace(b)
	mc, err := strconv.ParseInt(string(t), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not a temperature in millidegrees Celsius: %q", t)
	}
	return float64(mc) / 1000, nil
}
