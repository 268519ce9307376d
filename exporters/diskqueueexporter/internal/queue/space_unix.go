//go:build unix

package queue

import "syscall"

// FreeBytes is the space an unprivileged writer may still use on the file system that
// holds dir (statfs's available blocks, not the free ones root keeps for itself).
func FreeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:gosec,unconvert // sizes fit in int64; field types differ by platform
}
