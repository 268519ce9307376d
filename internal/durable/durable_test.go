package durable

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is the real file system, remembering the operations that make data durable and
// failing the one named in fail.
type recorder struct {
	OS
	ops  []string
	fail string
}

func (r *recorder) do(op string) error {
	r.ops = append(r.ops, op)
	if op == r.fail {
		return &os.PathError{Op: op, Path: "test", Err: syscall.EIO}
	}
	return nil
}

func (r *recorder) SyncDir(name string) error {
	if err := r.do("syncdir " + filepath.Base(name)); err != nil {
		return err
	}
	return r.OS.SyncDir(name)
}

func (r *recorder) Rename(oldpath, newpath string) error {
	if err := r.do("rename " + filepath.Base(oldpath) + " " + filepath.Base(newpath)); err != nil {
		return err
	}
	return r.OS.Rename(oldpath, newpath)
}

func (r *recorder) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := r.OS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, r: r, name: filepath.Base(name)}, nil
}

type syncFile struct {
	File
	r    *recorder
	name string
}

func (f *syncFile) Sync() error {
	if err := f.r.do("fsync " + f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func TestMkdirAllSyncsTheParentOfEveryNewDirectory(t *testing.T) {
	base := t.TempDir()
	rec := &recorder{}
	require.NoError(t, MkdirAll(rec, filepath.Join(base, "a", "b", "c"), 0o750))
	assert.Equal(t, []string{"syncdir " + filepath.Base(base), "syncdir a", "syncdir b"}, rec.ops)

	rec.ops = nil
	require.NoError(t, MkdirAll(rec, filepath.Join(base, "a", "b", "c"), 0o750))
	assert.Empty(t, rec.ops, "nothing created, nothing to sync")
}

// The data is fsynced before the rename and the directory after it: the only order in
// which a power cut leaves the old or the new content.
func TestWriteFileOrder(t *testing.T) {
	dir := t.TempDir()
	path, tmp := filepath.Join(dir, "state"), filepath.Join(dir, ".state.tmp")
	rec := &recorder{}
	require.NoError(t, WriteFile(rec, path, tmp, []byte("new"), 0o600))
	assert.Equal(t, []string{"fsync .state.tmp", "rename .state.tmp state", "syncdir " + filepath.Base(dir)}, rec.ops)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "new", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// A failure at any step keeps the old content and leaves no temporary file behind (except
// after the rename, when the new content is in place but not yet durable: the error says so).
func TestWriteFileFailureKeepsTheOldContent(t *testing.T) {
	for _, fail := range []string{"fsync .state.tmp", "rename .state.tmp state"} {
		t.Run(fail, func(t *testing.T) {
			dir := t.TempDir()
			path, tmp := filepath.Join(dir, "state"), filepath.Join(dir, ".state.tmp")
			require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
			err := WriteFile(&recorder{fail: fail}, path, tmp, []byte("new"), 0o600)
			require.ErrorIs(t, err, syscall.EIO)
			b, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			assert.Equal(t, "old", string(b))
			_, serr := os.Stat(tmp)
			assert.True(t, errors.Is(serr, os.ErrNotExist), "the temporary file is removed: %v", serr)
		})
	}
	dir := t.TempDir()
	err := WriteFile(&recorder{fail: "syncdir " + filepath.Base(dir)}, filepath.Join(dir, "state"), filepath.Join(dir, ".state.tmp"), []byte("new"), 0o600)
	require.ErrorContains(t, err, "fsync directory")
}
