package sdcard

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcessWriteBytes(t *testing.T) {
	n, err := ProcessWriteBytes("/proc")
	require.NoError(t, err, "this kernel has /proc/self/io")
	assert.GreaterOrEqual(t, n, int64(0))

	n, err = parseWriteBytes([]byte("rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"))
	require.NoError(t, err)
	assert.Equal(t, int64(8192), n)
	_, err = parseWriteBytes([]byte("rchar: 10\n"))
	assert.Error(t, err)
	_, err = parseWriteBytes([]byte("write_bytes: -1\n"))
	assert.Error(t, err)
}

// fakeSys builds a sysfs tree with an eMMC disk mmcblk0 (179:0) and its partition
// mmcblk0p2 (179:2), and an SD card mmcblk1 (179:8) that reports nothing.
func fakeSys(t *testing.T, lifeTime, preEOL string) string {
	root := t.TempDir()
	disk := filepath.Join(root, "devices", "platform", "emmc2bus", "mmc_host", "mmc0", "block", "mmcblk0")
	part := filepath.Join(disk, "mmcblk0p2")
	sd := filepath.Join(root, "devices", "platform", "mmc1", "block", "mmcblk1")
	for _, d := range []string{filepath.Join(disk, "device"), part, filepath.Join(sd, "device"), filepath.Join(root, "dev", "block")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	if lifeTime != "" {
		require.NoError(t, os.WriteFile(filepath.Join(disk, "device", "life_time"), []byte(lifeTime), 0o644))
	}
	if preEOL != "" {
		require.NoError(t, os.WriteFile(filepath.Join(disk, "device", "pre_eol_info"), []byte(preEOL), 0o644))
	}
	require.NoError(t, os.Symlink(disk, filepath.Join(root, "dev", "block", "179:0")))
	require.NoError(t, os.Symlink(part, filepath.Join(root, "dev", "block", "179:2")))
	require.NoError(t, os.Symlink(sd, filepath.Join(root, "dev", "block", "179:8")))
	return root
}

func TestReadHealth(t *testing.T) {
	sys := fakeSys(t, "0x03 0x0b\n", "0x02\n")
	for _, minor := range []uint32{0, 2} {
		h, err := ReadHealth(sys, 179, minor)
		require.NoError(t, err, "minor %d", minor)
		assert.InDelta(t, 0.3, h.LifeUsedA, 1e-9)
		assert.InDelta(t, 1.1, h.LifeUsedB, 1e-9, "0x0b: rated life exceeded")
		assert.Equal(t, 2, h.PreEOL)
	}
	_, err := ReadHealth(sys, 179, 8)
	assert.ErrorIs(t, err, ErrNoHealth, "an SD card without estimates")
	_, err = ReadHealth(sys, 8, 1)
	assert.ErrorIs(t, err, ErrNoHealth, "a device sysfs does not know")

	_, err = ReadHealth(fakeSys(t, "0x0c 0x01", ""), 179, 0)
	assert.ErrorContains(t, err, "not 0x00 to 0x0b")
	_, err = ReadHealth(fakeSys(t, "0x01", ""), 179, 0)
	assert.ErrorContains(t, err, "want two values")
	h, err := ReadHealth(fakeSys(t, "0x01 0x01", ""), 179, 0)
	require.NoError(t, err)
	assert.Zero(t, h.PreEOL, "pre_eol_info missing")
}

// FuzzParse: the sysfs and procfs parsers never panic and accept only what they document.
func FuzzParse(f *testing.F) {
	f.Add([]byte("0x01 0x02\n"))
	f.Add([]byte("write_bytes: 12\n"))
	f.Add([]byte("0x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, b, err := parseLifeTime(data); err == nil {
			require.True(t, a >= 0 && a <= 1.1 && b >= 0 && b <= 1.1)
		}
		if v, err := parsePreEOL(data); err == nil {
			require.True(t, v >= 0 && v <= 3)
		}
		if n, err := parseWriteBytes(data); err == nil {
			require.GreaterOrEqual(t, n, int64(0))
		}
	})
}
