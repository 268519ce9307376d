//go:build unix

package sdcard

import "golang.org/x/sys/unix"

// DeviceOf returns the major and minor numbers of the device holding path's file system.
func DeviceOf(path string) (major, minor uint32, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	dev := uint64(st.Dev) //nolint:unconvert // Dev is not uint64 on every platform
	return unix.Major(dev), unix.Minor(dev), nil
}
