package faultfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}

func writeFile(t *testing.T, path string, data []byte, fsync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	if fsync {
		require.NoError(t, f.Sync())
	}
	require.NoError(t, f.Close())
}

func cut(t *testing.T, f *FS) CutReport {
	t.Helper()
	rep, err := f.Cut()
	require.NoError(t, err)
	return rep
}

// afterCut reads a file of the backing directory, where the cut left the "disk".
func afterCut(t *testing.T, f *FS, name string) ([]byte, error) {
	t.Helper()
	return os.ReadFile(filepath.Join(f.Backing(), name))
}

func TestUnsyncedWriteIsLost(t *testing.T) {
	f := MountT(t, "", Options{})
	p := filepath.Join(f.Dir(), "a")
	writeFile(t, p, []byte("durable"), true)
	syncDir(t, f.Dir())

	// Appended but never fsynced.
	af, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = af.WriteString(" and lost")
	require.NoError(t, err)
	require.NoError(t, af.Close())
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "durable and lost", string(got), "before the cut the page cache has it")

	rep := cut(t, f)
	got, err = afterCut(t, f, "a")
	require.NoError(t, err)
	assert.Equal(t, "durable", string(got))
	assert.Equal(t, 1, rep.FilesRolledBack)
}

func TestSyncedWriteStays(t *testing.T) {
	f := MountT(t, "", Options{})
	p := filepath.Join(f.Dir(), "a")
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*BlockSize/16+7) // spans 4 blocks
	writeFile(t, p, data, true)
	syncDir(t, f.Dir())
	cut(t, f)
	got, err := afterCut(t, f, "a")
	require.NoError(t, err)
	assert.Equal(t, data, got)
}

func TestOverwriteWithoutFsyncRestoresOldBytes(t *testing.T) {
	f := MountT(t, "", Options{})
	p := filepath.Join(f.Dir(), "a")
	old := bytes.Repeat([]byte{'o'}, 2*BlockSize)
	writeFile(t, p, old, true)
	syncDir(t, f.Dir())
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteAt([]byte("new"), BlockSize+10)
	require.NoError(t, err)
	require.NoError(t, w.Truncate(100)) // and shrink, unsynced
	require.NoError(t, w.Close())
	cut(t, f)
	got, err := afterCut(t, f, "a")
	require.NoError(t, err)
	assert.Equal(t, old, got, "an overwrite and a truncate that were never fsynced are undone")
}

func TestNewFileWithoutDirFsyncDisappears(t *testing.T) {
	f := MountT(t, "", Options{})
	writeFile(t, filepath.Join(f.Dir(), "a"), []byte("synced data, name never synced"), true)
	rep := cut(t, f)
	_, err := afterCut(t, f, "a")
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Equal(t, 1, rep.EntriesUndone)
}

func TestRenameWithoutDirFsyncIsUndone(t *testing.T) {
	f := MountT(t, "", Options{})
	dst := filepath.Join(f.Dir(), "state")
	writeFile(t, dst, []byte("old"), true)
	syncDir(t, f.Dir())

	tmp := filepath.Join(f.Dir(), "state.tmp")
	writeFile(t, tmp, []byte("new"), true)
	require.NoError(t, os.Rename(tmp, dst))
	got, err := os.ReadFile(dst)
	require.NoError(t, err)
	require.Equal(t, "new", string(got))

	rep := cut(t, f)
	got, err = afterCut(t, f, "state")
	require.NoError(t, err)
	assert.Equal(t, "old", string(got), "the rename was never made durable")
	assert.Equal(t, []string{"state"}, rep.Dropped, "the new file under the old name")
	assert.Equal(t, []string{"state"}, rep.Restored, "the old file back under its name")
	_, err = afterCut(t, f, "state.tmp")
	assert.ErrorIs(t, err, os.ErrNotExist, "nor was the temporary file's name")
}

func TestRenameWithDirFsyncStays(t *testing.T) {
	f := MountT(t, "", Options{})
	dst := filepath.Join(f.Dir(), "state")
	writeFile(t, dst, []byte("old"), true)
	syncDir(t, f.Dir())
	tmp := filepath.Join(f.Dir(), "state.tmp")
	writeFile(t, tmp, []byte("new"), true)
	require.NoError(t, os.Rename(tmp, dst))
	syncDir(t, f.Dir())
	cut(t, f)
	got, err := afterCut(t, f, "state")
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
}

func TestRemoveWithoutDirFsyncComesBack(t *testing.T) {
	f := MountT(t, "", Options{})
	require.NoError(t, os.Mkdir(filepath.Join(f.Dir(), "sub"), 0o750))
	syncDir(t, f.Dir())
	p := filepath.Join(f.Dir(), "sub", "seg")
	writeFile(t, p, []byte("segment"), true)
	syncDir(t, filepath.Join(f.Dir(), "sub"))
	require.NoError(t, os.Remove(p))
	// A directory made but never made durable in its parent.
	require.NoError(t, os.Mkdir(filepath.Join(f.Dir(), "new"), 0o750))
	cut(t, f)
	got, err := afterCut(t, f, "sub/seg")
	require.NoError(t, err)
	assert.Equal(t, "segment", string(got))
	_, err = os.Stat(filepath.Join(f.Backing(), "new"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestTornWritesKeepOnlyAPrefix(t *testing.T) {
	const blocks = 8
	sawPartial := false
	for seed := range uint64(20) {
		f := MountT(t, "", Options{Seed: seed, TornWrites: true})
		p := filepath.Join(f.Dir(), "log")
		writeFile(t, p, nil, true)
		syncDir(t, f.Dir())
		w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		for b := range blocks {
			_, err := w.Write(bytes.Repeat([]byte{byte('a' + b)}, BlockSize))
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
		rep := cut(t, f)
		got, err := afterCut(t, f, "log")
		require.NoError(t, err)
		require.Zero(t, len(got)%BlockSize, "seed %d: tears at block boundaries", seed)
		kept := len(got) / BlockSize
		for b := range kept {
			require.Equal(t, bytes.Repeat([]byte{byte('a' + b)}, BlockSize), got[b*BlockSize:(b+1)*BlockSize],
				"seed %d: block %d of the kept prefix", seed, b)
		}
		assert.Equal(t, kept, rep.BlocksKept)
		assert.Equal(t, blocks-kept, rep.BlocksLost)
		sawPartial = sawPartial || (kept > 0 && kept < blocks)
	}
	assert.True(t, sawPartial, "some seed must tear the write in the middle")
}

func TestFailedFsyncLosesDataEvenAfterALaterFsyncSucceeds(t *testing.T) {
	f := MountT(t, "", Options{})
	p := filepath.Join(f.Dir(), "wal")
	writeFile(t, p, nil, true)
	syncDir(t, f.Dir())
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = w.Write(bytes.Repeat([]byte{'x'}, BlockSize))
	require.NoError(t, err)
	f.FailNext(OpFsync, "wal", syscall.EIO)
	require.ErrorIs(t, w.Sync(), syscall.EIO)
	// fsyncgate: the retry "succeeds", yet the data it should have covered is gone.
	require.NoError(t, w.Sync())
	_, err = w.Write(bytes.Repeat([]byte{'y'}, BlockSize))
	require.NoError(t, err)
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())
	cut(t, f)
	got, err := afterCut(t, f, "wal")
	require.NoError(t, err)
	want := append(make([]byte, BlockSize), bytes.Repeat([]byte{'y'}, BlockSize)...)
	assert.Equal(t, want, got, "the block under the failed fsync reads as zeros, the later one survived")
	assert.Equal(t, int64(1), f.Stats().InjectedEIO)
}

func TestInjectedErrors(t *testing.T) {
	f := MountT(t, "", Options{})
	p := filepath.Join(f.Dir(), "a.seg")
	w, err := os.Create(p)
	require.NoError(t, err)
	defer func() { _ = w.Close() }()

	f.FailNext(OpWrite, "*.seg", syscall.EIO)
	_, err = w.Write([]byte("x"))
	require.ErrorIs(t, err, syscall.EIO)
	_, err = w.Write([]byte("x"))
	require.NoError(t, err, "FailNext fails one operation")

	f.SetFull(true)
	_, err = w.Write([]byte("y"))
	require.ErrorIs(t, err, syscall.ENOSPC)
	f.SetFull(false)
	_, err = w.Write([]byte("y"))
	require.NoError(t, err)

	f.FailNext(OpDirFsync, "", syscall.EIO)
	d, err := os.Open(f.Dir())
	require.NoError(t, err)
	require.ErrorIs(t, d.Sync(), syscall.EIO)
	require.NoError(t, d.Close())

	f.SetFsyncDelay(50 * time.Millisecond)
	start := time.Now()
	require.NoError(t, w.Sync())
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	st := f.Stats()
	assert.Equal(t, int64(2), st.InjectedEIO)
	assert.Equal(t, int64(1), st.InjectedENOSPC)
}

func TestScheduleIsReproducible(t *testing.T) {
	run := func() []bool {
		f := MountT(t, "", Options{Seed: 42, Schedule: Schedule{Match: "*.seg", WriteEIO: 0.3}})
		w, err := os.Create(filepath.Join(f.Dir(), "a.seg"))
		require.NoError(t, err)
		defer func() { _ = w.Close() }()
		var failed []bool
		for range 40 {
			_, err := w.Write([]byte("r"))
			failed = append(failed, errors.Is(err, syscall.EIO))
		}
		return failed
	}
	a, b := run(), run()
	assert.Equal(t, a, b)
	assert.Contains(t, a, true)
	assert.Contains(t, a, false)
}

func TestCutFailsLaterOperationsAndUnmounts(t *testing.T) {
	f := MountT(t, "", Options{})
	w, err := os.Create(filepath.Join(f.Dir(), "a"))
	require.NoError(t, err)
	cut(t, f)
	_, err = w.Write([]byte("after the cut"))
	require.Error(t, err, "a process still writing after the cut gets an error")
	_ = w.Close()
	_, err = os.Stat(filepath.Join(f.Dir(), "a"))
	require.Error(t, err, "the dead disk answers nothing")
	require.Error(t, os.MkdirAll(filepath.Join(f.Dir(), "new"), 0o750), "nothing can be created on the dead disk")
	require.NoError(t, f.Unmount())
	_, err = os.Stat(filepath.Join(f.Dir(), "a"))
	require.ErrorIs(t, err, os.ErrNotExist, "the mount point is empty again: nothing is mounted")

	// Restart on what the cut left.
	g := MountT(t, f.Root(), Options{})
	entries, err := os.ReadDir(g.Dir())
	require.NoError(t, err)
	assert.Empty(t, entries, "the file was never made durable in its directory")
}

// TestHarnessCatchesBrokenWriters is the control of every power-loss test built on
// faultfs: state writers that skip the file fsync or the directory fsync must lose data
// in a cut, and the correct writer must not.
func TestHarnessCatchesBrokenWriters(t *testing.T) {
	writers := map[string]struct {
		fileSync, dirSync bool
		wantKept          bool
	}{
		"write, fsync, rename, fsync dir": {fileSync: true, dirSync: true, wantKept: true},
		"no fsync of the file":            {dirSync: true},
		"no fsync of the directory":       {fileSync: true},
	}
	for name, w := range writers {
		t.Run(name, func(t *testing.T) {
			f := MountT(t, "", Options{})
			dst := filepath.Join(f.Dir(), "latches.json")
			writeFile(t, dst, []byte(`{"v":1}`), true)
			syncDir(t, f.Dir())
			writeFile(t, dst+".tmp", []byte(`{"v":2}`), w.fileSync)
			require.NoError(t, os.Rename(dst+".tmp", dst))
			if w.dirSync {
				syncDir(t, f.Dir())
			}
			cut(t, f)
			got, err := afterCut(t, f, "latches.json")
			require.NoError(t, err)
			if w.wantKept {
				assert.Equal(t, `{"v":2}`, string(got))
			} else {
				assert.NotEqual(t, `{"v":2}`, string(got), "the broken writer's update must not survive the cut")
			}
		})
	}
}

func TestDurableShowsWhatACutWouldLeave(t *testing.T) {
	f := MountT(t, "", Options{})
	require.NoError(t, os.Mkdir(filepath.Join(f.Dir(), "state"), 0o750))
	p := filepath.Join(f.Dir(), "state", "latches.json")
	writeFile(t, p, []byte("v1"), true)
	_, err := f.Durable("state/latches.json")
	require.ErrorIs(t, err, os.ErrNotExist, "neither the directory nor the file name is durable yet")
	syncDir(t, f.Dir())
	syncDir(t, filepath.Join(f.Dir(), "state"))
	got, err := f.Durable("state/latches.json")
	require.NoError(t, err)
	assert.Equal(t, "v1", string(got))

	writeFile(t, p+".tmp", []byte("v2"), true)
	require.NoError(t, os.Rename(p+".tmp", p))
	got, err = f.Durable("state/latches.json")
	require.NoError(t, err)
	assert.Equal(t, "v1", string(got), "renamed, not yet durable")
	syncDir(t, filepath.Join(f.Dir(), "state"))
	got, err = f.Durable("state/latches.json")
	require.NoError(t, err)
	assert.Equal(t, "v2", string(got))

	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = w.WriteString("-unsynced")
	require.NoError(t, err)
	require.NoError(t, w.Close())
	got, err = f.Durable("state/latches.json")
	require.NoError(t, err)
	assert.Equal(t, "v2", string(got))

	durable, err := f.Durable("state/latches.json")
	require.NoError(t, err)
	cut(t, f)
	after, err := afterCut(t, f, "state/latches.json")
	require.NoError(t, err)
	assert.Equal(t, durable, after, "Durable predicts the cut")
}

const staleChildEnv = "FAULTFS_STALE_CHILD_ROOT"

// TestStaleMountChild mounts and exits without unmounting, as a test binary that panicked
// outside its test goroutine does. It only runs as the child of TestStaleMountIsDetached.
func TestStaleMountChild(t *testing.T) {
	root := os.Getenv(staleChildEnv)
	if root == "" {
		t.Skip("only runs as the child of TestStaleMountIsDetached")
	}
	if _, err := Mount(root, Options{}); err != nil {
		t.Fatal(err)
	}
	os.Exit(0)
}

func TestStaleMountIsDetached(t *testing.T) {
	Require(t)
	root := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStaleMountChild$") //nolint:gosec // the test binary itself
	cmd.Env = append(os.Environ(), staleChildEnv+"="+root)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	mnt := filepath.Join(root, mntDir)
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) }) // should the code under test fail
	_, err = os.Stat(mnt)
	require.ErrorIs(t, err, syscall.ENOTCONN, "the dead child left its mount behind")

	detachStale()
	_, err = os.Stat(mnt)
	require.NoError(t, err, "the stale mount is gone")
	mounts, err := os.ReadFile("/proc/self/mounts")
	require.NoError(t, err)
	assert.NotContains(t, string(mounts), mnt)
}
