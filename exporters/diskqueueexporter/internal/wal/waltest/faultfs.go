// Package waltest holds test doubles for the WAL's file layer.
package waltest // import "github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal/waltest"

import (
	"os"
	"sync"
	"syscall"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// FaultFS is a real directory with a simulated free-space budget: a write that does not fit
// writes what fits and fails with ENOSPC, as a full disk does; removing or truncating files
// gives the space back. It needs no privileges, unlike a small tmpfs.
type FaultFS struct {
	wal.FS
	mu      sync.Mutex
	free    int64 // bytes left; negative means unlimited
	syncErr error
}

// NewFaultFS wraps the real file system with unlimited space.
func NewFaultFS() *FaultFS { return &FaultFS{FS: wal.OSFS{}, free: -1} }

// SetFree sets the bytes that may still be written; negative means unlimited.
func (f *FaultFS) SetFree(n int64) {
	f.mu.Lock()
	f.free = n
	f.mu.Unlock()
}

// FailSync makes every fsync of a file return err (nil restores normal syncs).
func (f *FaultFS) FailSync(err error) {
	f.mu.Lock()
	f.syncErr = err
	f.mu.Unlock()
}

// OpenFile opens a file whose writes draw on the budget.
func (f *FaultFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

// Remove deletes a file and gives its space back.
func (f *FaultFS) Remove(name string) error {
	info, statErr := os.Stat(name)
	if err := f.FS.Remove(name); err != nil {
		return err
	}
	if statErr == nil {
		f.release(info.Size())
	}
	return nil
}

func (f *FaultFS) release(n int64) {
	f.mu.Lock()
	if f.free >= 0 {
		f.free += n
	}
	f.mu.Unlock()
}

// reserve grants up to n bytes and says whether all of them fit.
func (f *FaultFS) reserve(n int64) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.free < 0 {
		return n, true
	}
	if n <= f.free {
		f.free -= n
		return n, true
	}
	granted := f.free
	f.free = 0
	return granted, false
}

type faultFile struct {
	wal.File
	fs *FaultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	granted, ok := f.fs.reserve(int64(len(p)))
	n, err := f.File.Write(p[:granted])
	if err != nil {
		return n, err
	}
	if !ok {
		return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return n, nil
}

func (f *faultFile) Truncate(size int64) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	if d := info.Size() - size; d > 0 {
		f.fs.release(d)
	}
	return nil
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.syncErr
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}
