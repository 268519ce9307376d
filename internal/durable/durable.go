// Package durable writes files and directories so that what a call reported as written
// survives a power cut: the latch file of the control loops and the disk queue's WAL and
// checkpoint go through it. A file is replaced atomically (write a temporary file, fsync it,
// rename it over the old one, fsync the directory); a directory created is fsynced into its
// parent. Every operation goes through FS, so tests put a fault-injecting or power-cutting
// layer under it without privileges.
package durable // import "github.com/fieldcol/fieldcol/internal/durable"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is the part of *os.File that durable writes and the WAL use.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
}

// FS is the set of directory operations durable writes and the WAL use.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	MkdirAll(path string, perm os.FileMode) error
	ReadDir(name string) ([]os.DirEntry, error)
	// SyncDir makes the directory entries (created, renamed, removed files) durable.
	SyncDir(name string) error
}

// OS is the real file system.
type OS struct{}

var _ FS = OS{}

// OpenFile opens a file with os.OpenFile.
func (OS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Rename renames a file with os.Rename.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove removes a file with os.Remove.
func (OS) Remove(name string) error { return os.Remove(name) }

// MkdirAll creates a directory tree with os.MkdirAll.
func (OS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// ReadDir lists a directory with os.ReadDir.
func (OS) ReadDir(name string) ([]os.DirEntry, error) { return os.ReadDir(name) }

// SyncDir opens the directory and fsyncs it.
func (OS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// MkdirAll creates dir and its missing parents as os.MkdirAll does, then fsyncs the parent
// of every directory it created. A new directory's name lives in its parent: without that
// fsync a power cut can take the directory away with every file fsynced inside it.
func MkdirAll(fsys FS, dir string, perm os.FileMode) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.ReadDir(d); !errors.Is(err, os.ErrNotExist) {
			break // exists, or an error MkdirAll reports below
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(created[i])); err != nil {
			return fmt.Errorf("syncing %s after creating %s: %w", filepath.Dir(created[i]), created[i], err)
		}
	}
	return nil
}

// WriteFile replaces path with data atomically and durably: data goes to tmp (a name in
// the same directory, which the caller removes at start if a cut left it behind), is
// fsynced, renamed over path, and the directory is fsynced. After a power cut path holds
// either the old or the new content, never a mix; once WriteFile returns nil, the new.
func WriteFile(fsys FS, path, tmp string, data []byte, perm os.FileMode) (err error) {
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err = fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	if err = fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("fsync directory %s: %w", filepath.Dir(path), err)
	}
	return nil
}
