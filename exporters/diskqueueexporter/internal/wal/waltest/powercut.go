package waltest

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fieldcol/fieldcol/exporters/diskqueueexporter/internal/wal"
)

// errPowerCut is what every operation returns once the power is cut.
var errPowerCut = &os.PathError{Op: "io", Path: "power cut", Err: syscall.EIO}

// PowerCutFS simulates a power loss, which a SIGKILL cannot: the page cache survives a
// killed process but not a cut. It remembers, per file, how much was fsynced and whether the
// file's directory entry was made durable (SyncDir after creation). Cut then drops
// everything else: unsynced bytes are truncated away, files never made durable in their
// directory disappear, and every later operation fails with EIO.
//
// Removals and renames are treated as durable at once, a simplification: a removed segment
// coming back, or a checkpoint rename being undone, only makes the queue resend.
type PowerCutFS struct {
	base  wal.FS
	mu    sync.Mutex // serializes every operation so Cut never races a write
	files map[string]*fileState
	cut   bool
}

type fileState struct {
	synced  int64
	durable bool
}

// NewPowerCutFS wraps the real file system; call it on an empty directory.
func NewPowerCutFS() *PowerCutFS {
	return &PowerCutFS{base: wal.OSFS{}, files: map[string]*fileState{}}
}

// Cut loses everything that was not made durable and fails every later operation.
func (p *PowerCutFS) Cut() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	var errs []error
	for name, st := range p.files {
		if !st.durable {
			errs = append(errs, os.Remove(name))
			continue
		}
		errs = append(errs, os.Truncate(name, st.synced))
	}
	return errors.Join(errs...)
}

// OpenFile opens a file, tracking files it creates.
func (p *PowerCutFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return nil, errPowerCut
	}
	info, statErr := os.Stat(name)
	f, err := p.base.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if _, tracked := p.files[name]; !tracked {
		if statErr == nil {
			// Present before this layer saw it: durable as it is.
			p.files[name] = &fileState{synced: info.Size(), durable: true}
		} else {
			p.files[name] = &fileState{}
		}
	}
	return &powerCutFile{File: f, fs: p, name: name}, nil
}

// Rename renames a file and its tracking.
func (p *PowerCutFS) Rename(oldpath, newpath string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return errPowerCut
	}
	if err := p.base.Rename(oldpath, newpath); err != nil {
		return err
	}
	st := p.files[oldpath]
	delete(p.files, oldpath)
	if st != nil {
		st.durable = true
		p.files[newpath] = st
	}
	return nil
}

// Remove removes a file.
func (p *PowerCutFS) Remove(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return errPowerCut
	}
	delete(p.files, name)
	return p.base.Remove(name)
}

// MkdirAll creates directories.
func (p *PowerCutFS) MkdirAll(path string, perm os.FileMode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return errPowerCut
	}
	return p.base.MkdirAll(path, perm)
}

// ReadDir lists a directory.
func (p *PowerCutFS) ReadDir(name string) ([]os.DirEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return nil, errPowerCut
	}
	return p.base.ReadDir(name)
}

// SyncDir makes the entries of the files in dir durable.
func (p *PowerCutFS) SyncDir(dir string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return errPowerCut
	}
	if err := p.base.SyncDir(dir); err != nil {
		return err
	}
	for name, st := range p.files {
		if filepath.Dir(name) == filepath.Clean(dir) {
			st.durable = true
		}
	}
	return nil
}

type powerCutFile struct {
	wal.File
	fs   *PowerCutFS
	name string
}

func (f *powerCutFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.cut {
		return 0, errPowerCut
	}
	return f.File.Write(b)
}

func (f *powerCutFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.cut {
		return 0, errPowerCut
	}
	return f.File.ReadAt(b, off)
}

func (f *powerCutFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.cut {
		return errPowerCut
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if st := f.fs.files[f.name]; st != nil {
		st.synced = info.Size()
	}
	return nil
}

func (f *powerCutFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.cut {
		return errPowerCut
	}
	if err := f.File.Truncate(size); err != nil {
		return err
	}
	if st := f.fs.files[f.name]; st != nil {
		st.synced = min(st.synced, size)
	}
	return nil
}
