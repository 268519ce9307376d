// Package sdcard reads what the kernel knows about the wear of the storage under a
// directory: the bytes this process caused to be written to storage (/proc/self/io) and,
// on eMMC devices, the device's own life-time estimates (life_time, pre_eol_info in sysfs).
package sdcard // import "github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/sdcard"

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcessWriteBytes is write_bytes of /proc/self/io under procRoot ("/proc"): the bytes
// this process caused to be sent to the storage layer (page cache writeback included).
func ProcessWriteBytes(procRoot string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(procRoot, "self", "io"))
	if err != nil {
		return 0, err
	}
	return parseWriteBytes(data)
}

// parseWriteBytes finds the write_bytes line of a /proc/<pid>/io file.
func parseWriteBytes(data []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		value, ok := strings.CutPrefix(sc.Text(), "write_bytes:")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("sdcard: write_bytes %q is not a byte count", strings.TrimSpace(value))
		}
		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("sdcard: no write_bytes line")
}

// Health is an eMMC device's own wear report (JEDEC EXT_CSD, exposed by the mmc driver).
type Health struct {
	// Device is the sysfs directory of the device that reported it.
	Device string
	// LifeUsedA and LifeUsedB are the upper bounds of the bands of rated life used of the
	// two kinds of memory (SLC and MLC areas), 0.1 to 1.0, or 1.1 when exceeded; 0 when the
	// device does not say.
	LifeUsedA, LifeUsedB float64
	// PreEOL is 1 (normal), 2 (warning: 80% of reserved blocks used) or 3 (urgent); 0 when
	// the device does not say.
	PreEOL int
}

// ErrNoHealth means the device under the directory exposes no eMMC life-time estimates
// (an SD card, a USB stick, a disk): nothing to report, not a failure.
var ErrNoHealth = errors.New("sdcard: the device exposes no life-time estimates")

// ReadHealth finds the block device with the given major:minor numbers (the device of the
// file system holding the queue) under sysRoot ("/sys") and reads its eMMC estimates; a
// partition's estimates are its disk's.
func ReadHealth(sysRoot string, major, minor uint32) (Health, error) {
	dev, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return Health{}, fmt.Errorf("%w: %v", ErrNoHealth, err)
	}
	for _, dir := range []string{dev, filepath.Dir(dev)} {
		lt, err := os.ReadFile(filepath.Join(dir, "device", "life_time"))
		if err != nil {
			continue
		}
		h := Health{Device: dir}
		if h.LifeUsedA, h.LifeUsedB, err = parseLifeTime(lt); err != nil {
			return Health{}, err
		}
		if eol, err := os.ReadFile(filepath.Join(dir, "device", "pre_eol_info")); err == nil {
			if h.PreEOL, err = parsePreEOL(eol); err != nil {
				return Health{}, err
			}
		}
		return h, nil
	}
	return Health{}, ErrNoHealth
}

// parseLifeTime reads "0x01 0x02": the life-time estimates A and B, each a band of 10% of
// rated life used (0x01 = 0-10% ... 0x0a = 90-100%, 0x0b = exceeded; 0x00 = not defined).
func parseLifeTime(data []byte) (a, b float64, err error) {
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0, 0, fmt.Errorf("sdcard: life_time %q: want two values", strings.TrimSpace(string(data)))
	}
	var out [2]float64
	for i, f := range fields {
		v, err := strconv.ParseUint(f, 0, 8)
		if err != nil || v > 0x0b {
			return 0, 0, fmt.Errorf("sdcard: life_time value %q is not 0x00 to 0x0b", f)
		}
		out[i] = float64(v) / 10
	}
	return out[0], out[1], nil
}

// parsePreEOL reads pre_eol_info: 0x01 normal, 0x02 warning, 0x03 urgent (0x00 not defined).
func parsePreEOL(data []byte) (int, error) {
	s := strings.TrimSpace(string(data))
	v, err := strconv.ParseUint(s, 0, 8)
	if err != nil || v > 3 {
		return 0, fmt.Errorf("sdcard: pre_eol_info %q is not 0x00 to 0x03", s)
	}
	return int(v), nil
}
