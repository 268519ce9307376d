package faultfs

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// Available says why faultfs cannot mount here, or nil when it can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("faultfs mounts with mount(2) and needs root")
	}
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("/dev/fuse cannot be opened: %w", err)
	}
	return dev.Close()
}

// Require skips the test when faultfs cannot mount here, saying why, and fails it instead
// under CI=true, where /dev/fuse must be present: a power-loss test must never pass by
// not running.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("power-loss tests need FUSE and CI must provide it: %v", err)
	}
	t.Skipf("skipping power-loss test: %v (run as root with /dev/fuse; CI=true turns this skip into a failure)", err)
}

// MountT mounts root (a new temporary directory when empty) for the test and unmounts it
// when the test ends, whether it passed or not, so no mount outlives the test.
func MountT(t testing.TB, root string, opts Options) *FS {
	t.Helper()
	Require(t)
	if root == "" {
		root = t.TempDir()
	}
	f, err := Mount(root, opts)
	if err != nil {
		if os.Getenv("CI") != "true" && errors.Is(err, os.ErrPermission) {
			t.Skipf("skipping power-loss test: %v", err)
		}
		t.Fatalf("mounting faultfs: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmounting faultfs: %v", err)
		}
	})
	return f
}
