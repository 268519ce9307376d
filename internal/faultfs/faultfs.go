// Package faultfs is a FUSE pass-through file system for tests that simulates power loss.
//
// A SIGKILL cannot show power-loss bugs: the kernel's page cache survives a killed process,
// so a program that forgets an fsync, or fsyncs a file but not its directory after a
// rename, still passes every kill -9 test. faultfs mounts a directory through FUSE and
// records, per file, the 4 KiB blocks written (or truncated) since the last fsync, and, per
// directory, the entries as they were at its last fsync. Cut then simulates a power cut, in
// the spirit of LazyFS: at once every later operation fails with EIO (the mount stays, dead,
// until it is unmounted or mounted again, so nothing reaches the disk any more) and the
// backing directory is rolled back so that unsynced writes are lost (optionally torn: a
// seeded random prefix of them kept) and unsynced directory changes (creations, renames,
// removals, links) are undone. Mounting the same root again is the restart. It also injects EIO on write or fsync, ENOSPC and slow fsyncs, on
// demand or by a seeded schedule.
//
// A failed fsync follows Linux ("fsyncgate"): the blocks it covered are lost at the next
// cut even if a later fsync succeeds, unless they are written again.
//
// faultfs is test support, never shipped. It needs /dev/fuse and root (it mounts with
// mount(2) directly; no fusermount is needed). MountT skips a test where it cannot mount,
// and fails it under CI=true.
package faultfs // import "github.com/fieldcol/fieldcol/internal/faultfs"

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// BlockSize is the granularity at which unsynced data is tracked and torn.
const BlockSize = 4096

// Op names an operation faults can be injected into.
type Op int

// Operations that can fail on demand or by schedule.
const (
	OpWrite    Op = iota // write(2) and fallocate(2) of a file
	OpFsync              // fsync(2) or fdatasync(2) of a file
	OpDirFsync           // fsync(2) of a directory
)

func (o Op) String() string {
	switch o {
	case OpWrite:
		return "write"
	case OpFsync:
		return "fsync"
	case OpDirFsync:
		return "dir-fsync"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Schedule injects faults at random, reproducibly for a given Options.Seed. Each rate is the
// probability (0 to 1) that one operation on a matching file fails.
type Schedule struct {
	// Match is a filepath.Match pattern on the file's base name ("*.seg"); empty matches
	// every file.
	Match       string
	WriteEIO    float64
	WriteENOSPC float64
	FsyncEIO    float64
	// SlowFsync delays a share SlowFsyncRate of fsyncs by SlowFsync, as an SD card does
	// when it erases a block.
	SlowFsync     time.Duration
	SlowFsyncRate float64
}

// Options configure a mount.
type Options struct {
	// Seed makes torn writes and the schedule reproducible.
	Seed uint64
	// TornWrites keeps, at Cut, a seeded random prefix (in the order blocks were first
	// dirtied) of each file's unsynced blocks instead of dropping all of them, as a disk
	// that had written part of its cache when the power went does.
	TornWrites bool
	// Schedule injects faults at random.
	Schedule Schedule
}

// Stats counts what the file system saw and did.
type Stats struct {
	Writes, Fsyncs, DirFsyncs           int64
	InjectedEIO, InjectedENOSPC, Slowed int64
}

// CutReport says what a power cut undid.
type CutReport struct {
	FilesRolledBack int // files whose content or size changed
	BlocksLost      int // unsynced blocks dropped
	BlocksKept      int // unsynced blocks kept by TornWrites
	EntriesUndone   int // directory entries removed or put back
	// Names, for telling which moments of a program a cut hit: files whose content or
	// size was rolled back, entries removed (never made durable) and put back (whose
	// removal or replacement was never made durable).
	RolledBack, Dropped, Restored []string
	BytesBefore                   int64 // total size of regular files before the rollback
	BytesAfter                    int64
}

// FS is one mount.
type FS struct {
	root, disk, attic, mnt string
	opts                   Options
	server                 *fuse.Server

	// ops is held shared by every file-system operation and exclusively by Cut and
	// Unmount, so that a cut happens between two operations, never inside one.
	ops  sync.RWMutex
	down bool

	detachOnce sync.Once
	detachErr  error

	mu         sync.Mutex // guards everything below
	cut        bool
	rng        *rand.Rand
	files      map[uint64]*fileState
	dirs       map[uint64]map[string]entry // dir inode -> entries at its last fsync
	names      map[uint64]string           // a base name of each file kept in the attic
	once       []injection
	full       bool
	fsyncDelay time.Duration
	stats      Stats
}

type injection struct {
	op      Op
	pattern string
	errno   syscall.Errno
}

// entry is a directory entry as it was when the directory was last made durable.
type entry struct {
	ino   uint64
	isDir bool
}

// fileState is what a file would lose in a power cut.
type fileState struct {
	durableSize int64
	// undo holds each block dirtied since the last fsync with its durable content
	// (shorter than a block, or empty, where the durable file ended).
	undo  map[int64][]byte
	order []int64 // blocks in the order they were first dirtied
	// poisoned blocks were covered by a failed fsync: a later successful fsync does not
	// make them durable, only writing them again does.
	poisoned map[int64]bool
}

const (
	diskDir  = "disk"
	atticDir = "attic"
	mntDir   = "mnt"
)

// Mount mounts root/disk on root/mnt through faultfs. root is created if needed; a
// root/disk left by an earlier mount (and its cut) is reused, which is how a test
// "restarts" on what the cut left.
func Mount(root string, opts Options) (*FS, error) {
	f := &FS{
		root:  root,
		disk:  filepath.Join(root, diskDir),
		attic: filepath.Join(root, atticDir),
		mnt:   filepath.Join(root, mntDir),
		opts:  opts,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), //nolint:gosec // reproducible test faults
		files: map[uint64]*fileState{},
		dirs:  map[uint64]map[string]entry{},
		names: map[uint64]string{},
	}
	mounts.Lock()
	prev := mounts.live[f.mnt]
	mounts.Unlock()
	if prev != nil {
		if err := prev.Unmount(); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{f.disk, f.mnt} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("faultfs: creating %s: %w", d, err)
		}
	}
	staleOnce.Do(detachStale)
	if err := os.RemoveAll(f.attic); err != nil {
		return nil, fmt.Errorf("faultfs: clearing %s: %w", f.attic, err)
	}
	if err := os.Mkdir(f.attic, 0o700); err != nil {
		return nil, fmt.Errorf("faultfs: creating %s: %w", f.attic, err)
	}
	lb, err := fs.NewLoopbackRoot(f.disk)
	if err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	lbRoot, ok := lb.(*fs.LoopbackNode)
	if !ok {
		return nil, fmt.Errorf("faultfs: unexpected loopback root %T", lb)
	}
	rootNode := &node{LoopbackNode: lbRoot, fsys: f}
	lbRoot.RootData.RootNode = rootNode
	// No kernel caching of names or attributes: every lookup sees the backing directory
	// as faultfs changed it, which keeps a cut's rollback and the kernel's view apart.
	zero := time.Duration(0)
	server, err := fs.Mount(f.mnt, rootNode, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName:        "faultfs",
			Name:          "faultfs",
			DirectMount:   true, // root: mount(2) itself, no fusermount binary needed
			DisableXAttrs: true,
			// After a cut the server answers requests the kernel already dropped, and
			// logs each failed reply: expected noise, not a finding.
			Logger: log.New(io.Discard, "", 0),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("faultfs: mounting %s: %w", f.mnt, err)
	}
	f.server = server
	mounts.Lock()
	mounts.live[f.mnt] = f
	mounts.Unlock()
	return f, nil
}

// Dir is the mount point: put the directory under test here.
func (f *FS) Dir() string { return f.mnt }

// Root is the directory Mount was given; mount it again after a Cut to restart.
func (f *FS) Root() string { return f.root }

// Backing is the backing directory (what "the disk" holds).
func (f *FS) Backing() string { return f.disk }

// Stats returns the counters so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// FailNext makes the next op on a file whose base name matches pattern (filepath.Match;
// empty matches all) fail with errno. Injections queue up and are used once each.
func (f *FS) FailNext(op Op, pattern string, errno syscall.Errno) {
	f.mu.Lock()
	f.once = append(f.once, injection{op: op, pattern: pattern, errno: errno})
	f.mu.Unlock()
}

// SetFull makes every write fail with ENOSPC while full is set, as a full disk does.
func (f *FS) SetFull(full bool) {
	f.mu.Lock()
	f.full = full
	f.mu.Unlock()
}

// SetFsyncDelay delays every fsync (of files and directories) by d.
func (f *FS) SetFsyncDelay(d time.Duration) {
	f.mu.Lock()
	f.fsyncDelay = d
	f.mu.Unlock()
}

// begin admits one operation; after a cut it answers EIO, as a dead disk does.
func (f *FS) begin() (func(), syscall.Errno) {
	f.ops.RLock()
	if f.down {
		f.ops.RUnlock()
		return nil, syscall.EIO
	}
	return f.ops.RUnlock, 0
}

func matches(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	ok, err := filepath.Match(pattern, filepath.Base(name))
	return err == nil && ok
}

// fault decides whether op on name fails; called without f.mu held. It also applies a
// slow fsync, outside every lock so that other operations go on meanwhile.
func (f *FS) fault(op Op, name string) syscall.Errno {
	f.mu.Lock()
	var errno syscall.Errno
	for i, inj := range f.once {
		if inj.op == op && matches(inj.pattern, name) {
			errno = inj.errno
			f.once = append(f.once[:i:i], f.once[i+1:]...)
			break
		}
	}
	s := f.opts.Schedule
	var delay time.Duration
	if errno == 0 && matches(s.Match, name) {
		switch op {
		case OpWrite:
			if f.full || f.chance(s.WriteENOSPC) {
				errno = syscall.ENOSPC
			} else if f.chance(s.WriteEIO) {
				errno = syscall.EIO
			}
		case OpFsync, OpDirFsync:
			if f.chance(s.FsyncEIO) {
				errno = syscall.EIO
			}
		}
	} else if errno == 0 && op == OpWrite && f.full {
		errno = syscall.ENOSPC
	}
	if op != OpWrite {
		delay = f.fsyncDelay
		if s.SlowFsync > 0 && matches(s.Match, name) && f.chance(s.SlowFsyncRate) {
			delay += s.SlowFsync
		}
		if delay > 0 {
			f.stats.Slowed++
		}
	}
	switch errno {
	case syscall.EIO:
		f.stats.InjectedEIO++
	case syscall.ENOSPC:
		f.stats.InjectedENOSPC++
	}
	f.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	return errno
}

func (f *FS) chance(p float64) bool { return p > 0 && f.rng.Float64() < p }

// state returns the tracking of the file open as file, starting it (everything on disk
// now counts as durable) at first sight. Called with f.mu held.
func (f *FS) state(ino uint64, file *os.File) (*fileState, error) {
	if st := f.files[ino]; st != nil {
		return st, nil
	}
	info, err := file.Stat()
	if err != nil {
		return nil, err
	}
	st := &fileState{durableSize: info.Size(), undo: map[int64][]byte{}, poisoned: map[int64]bool{}}
	f.files[ino] = st
	return st, nil
}

// dirty saves the durable content of the blocks [off, off+n) before they change.
func (st *fileState) dirty(file *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		delete(st.poisoned, b) // written again: the page is dirty again and will be flushed
		if _, ok := st.undo[b]; ok {
			continue
		}
		var old []byte
		if start := b * BlockSize; start < st.durableSize {
			old = make([]byte, min(BlockSize, st.durableSize-start))
			if _, err := file.ReadAt(old, start); err != nil {
				return fmt.Errorf("faultfs: saving block %d: %w", b, err)
			}
		}
		st.undo[b] = old
		st.order = append(st.order, b)
	}
	return nil
}

// truncating saves the blocks a truncate to size removes.
func (st *fileState) truncating(file *os.File, size int64) error {
	if size >= st.durableSize {
		return nil
	}
	return st.dirty(file, size, st.durableSize-size)
}

// synced makes the file's current content durable, except poisoned blocks.
func (st *fileState) synced(size int64) {
	st.durableSize = size
	order := st.order[:0]
	for _, b := range st.order {
		if st.poisoned[b] {
			order = append(order, b)
			continue
		}
		delete(st.undo, b)
	}
	st.order = order
}

// failedSync marks every unsynced block as lost for good (until written again).
func (st *fileState) failedSync() {
	for _, b := range st.order {
		st.poisoned[b] = true
	}
}

// snapshotDir records the entries of the directory at path before its first change since
// it was last made durable. Called with f.mu held.
func (f *FS) snapshotDir(path string) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return err
	}
	if _, ok := f.dirs[st.Ino]; ok {
		return nil
	}
	ents, err := readEntries(path)
	if err != nil {
		return err
	}
	f.dirs[st.Ino] = ents
	return nil
}

func readEntries(path string) (map[string]entry, error) {
	des, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	ents := make(map[string]entry, len(des))
	for _, de := range des {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(path, de.Name()), &st); err != nil {
			return nil, err
		}
		ents[de.Name()] = entry{ino: st.Ino, isDir: st.Mode&syscall.S_IFMT == syscall.S_IFDIR}
	}
	return ents, nil
}

// keep links a file that is about to lose a name into the attic, so a cut can give the
// name back (the inode, with all its blocks, lives on). Called with f.mu held.
func (f *FS) keep(path string) error {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return nil
	}
	if _, ok := f.names[st.Ino]; !ok {
		f.names[st.Ino] = filepath.Base(path)
	}
	err := os.Link(path, f.atticFile(st.Ino))
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	return err
}

func (f *FS) atticFile(ino uint64) string { return filepath.Join(f.attic, fmt.Sprintf("f%d", ino)) }
func (f *FS) atticDir(ino uint64) string  { return filepath.Join(f.attic, fmt.Sprintf("d%d", ino)) }

// Cut simulates a power cut: every operation from now on fails with EIO, as a dead disk
// does (so nothing the process still does reaches the disk), and the backing directory is
// rolled back to what was durable. The dead mount stays in place until Unmount or the next
// Mount of the same root, which detaches it first: were it detached at once, a process
// still running (the in-process tests) would go on writing into the bare mount-point
// directory underneath and see those writes succeed.
func (f *FS) Cut() (CutReport, error) { return f.CutWith(nil) }

// CutWith cuts the power like Cut and calls during (when not nil) at the instant of the
// cut: after the file system stopped taking operations, before it rolls back. A test that
// runs the program under test in a child process kills it there, as the power cut would;
// that also keeps a program that maps files of the mount (bbolt does) from faulting on
// pages the cut took away.
func (f *FS) CutWith(during func()) (CutReport, error) {
	if !f.goDown() {
		return CutReport{}, errors.New("faultfs: already cut or unmounted")
	}
	f.mu.Lock()
	f.cut = true
	f.mu.Unlock()
	if during != nil {
		during()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rollback()
}

// Unmount unmounts. Without a Cut before it is a clean shutdown: everything written stays,
// as after a shutdown that flushed the page cache. After a Cut it detaches the dead mount.
// It is idempotent.
func (f *FS) Unmount() error {
	f.goDown()
	f.detachOnce.Do(func() {
		f.detachErr = f.detach()
		f.mu.Lock()
		cut := f.cut
		f.mu.Unlock()
		if !cut {
			f.detachErr = errors.Join(f.detachErr, os.RemoveAll(f.attic))
		}
		mounts.Lock()
		if mounts.live[f.mnt] == f {
			delete(mounts.live, f.mnt)
		}
		mounts.Unlock()
	})
	return f.detachErr
}

// mounts are the mounts of this process by mount point, so that mounting a root again
// detaches the dead mount a Cut left there.
var mounts = struct {
	sync.Mutex
	live map[string]*FS
}{live: map[string]*FS{}}

// goDown waits for the operations under way to finish and fails every later one. It
// reports false when the file system was already down. The lock is not kept: requests the
// kernel already queued must get their EIO, or the server could not stop.
func (f *FS) goDown() bool {
	f.ops.Lock()
	defer f.ops.Unlock()
	if f.down {
		return false
	}
	f.down = true
	return true
}

// detach aborts the FUSE connection (MNT_FORCE does that for FUSE), detaches the mount
// even while files are open (MNT_DETACH) and waits, bounded, for the server to stop.
func (f *FS) detach() error {
	_ = syscall.Unmount(f.mnt, syscall.MNT_FORCE)
	err := syscall.Unmount(f.mnt, syscall.MNT_DETACH)
	if errors.Is(err, syscall.EINVAL) {
		err = nil // MNT_FORCE already removed it
	}
	done := make(chan struct{})
	go func() {
		f.server.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		err = errors.Join(err, errors.New("faultfs: the FUSE server did not stop within 10s"))
	}
	if err != nil {
		return fmt.Errorf("faultfs: unmounting %s: %w", f.mnt, err)
	}
	return nil
}

// rollback turns the backing directory into what a power cut leaves. Called with f.mu held
// once no operation can change the backing directory any more.
func (f *FS) rollback() (CutReport, error) {
	var rep CutReport
	// Give every inode in the tree a name in the attic, so that entries can be removed
	// and put back in any order without losing an inode.
	if err := filepath.WalkDir(f.disk, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == f.disk {
			return nil
		}
		return f.keep(path)
	}); err != nil {
		return rep, fmt.Errorf("faultfs: listing %s: %w", f.disk, err)
	}
	rep.BytesBefore = f.treeBytes()
	for ino, st := range f.files {
		lost, kept, changed, err := f.rollbackFile(f.atticFile(ino), st)
		if err != nil {
			return rep, err
		}
		rep.BlocksLost += lost
		rep.BlocksKept += kept
		if changed {
			rep.FilesRolledBack++
			rep.RolledBack = append(rep.RolledBack, f.names[ino])
		}
	}
	var err error
	rep.Dropped, rep.Restored, err = f.rollbackDirs()
	rep.EntriesUndone = len(rep.Dropped) + len(rep.Restored)
	if err != nil {
		return rep, err
	}
	f.files = map[uint64]*fileState{}
	f.dirs = map[uint64]map[string]entry{}
	f.names = map[uint64]string{}
	rep.BytesAfter = f.treeBytes()
	if err := os.RemoveAll(f.attic); err != nil {
		return rep, fmt.Errorf("faultfs: clearing %s: %w", f.attic, err)
	}
	return rep, nil
}

func (f *FS) treeBytes() int64 {
	var n int64
	_ = filepath.WalkDir(f.disk, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// rollbackFile restores the durable blocks of one file, keeping a random prefix of the
// unsynced ones when writes tear.
func (f *FS) rollbackFile(path string, st *fileState) (lost, kept int, changed bool, err error) {
	if len(st.order) == 0 {
		info, statErr := os.Stat(path)
		if statErr != nil || info.Size() == st.durableSize {
			return 0, 0, false, nil
		}
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, nil // never had a name the walk could find
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("faultfs: opening %s for rollback: %w", path, err)
	}
	defer func() { _ = file.Close() }()
	info, err := file.Stat()
	if err != nil {
		return 0, 0, false, err
	}
	cur := info.Size()
	keep := 0
	if f.opts.TornWrites && len(st.order) > 0 {
		keep = f.rng.IntN(len(st.order) + 1)
	}
	keptSet := map[int64]bool{}
	size := st.durableSize
	for _, b := range st.order[:keep] {
		if st.poisoned[b] {
			continue // lost in a failed fsync: no luck can bring it back
		}
		keptSet[b] = true
		size = max(size, min(cur, (b+1)*BlockSize))
	}
	if err := file.Truncate(size); err != nil {
		return 0, 0, false, fmt.Errorf("faultfs: truncating %s: %w", path, err)
	}
	for _, b := range st.order {
		if keptSet[b] {
			kept++
			continue
		}
		lost++
		start := b * BlockSize
		if start >= size {
			continue
		}
		buf := make([]byte, min(BlockSize, size-start))
		copy(buf, st.undo[b]) // past the durable end a lost block reads as zeros
		if _, err := file.WriteAt(buf, start); err != nil {
			return lost, kept, true, fmt.Errorf("faultfs: restoring block %d of %s: %w", b, path, err)
		}
	}
	return lost, kept, size != cur || lost > 0, nil
}

// rollbackDirs makes every changed directory list the entries it had at its last fsync:
// first every entry that is not durable leaves (into the attic), then every durable entry
// that is missing comes back.
func (f *FS) rollbackDirs() (dropped, restored []string, err error) {
	for _, phase := range []struct {
		do  func(string, map[string]entry) ([]string, error)
		out *[]string
	}{{f.dropEntries, &dropped}, {f.restoreEntries, &restored}} {
		for ino, snap := range f.dirs {
			dir, ok, err := f.findDir(ino)
			if err != nil {
				return dropped, restored, err
			}
			if !ok {
				continue // the directory itself was not durable and is gone
			}
			names, err := phase.do(dir, snap)
			*phase.out = append(*phase.out, names...)
			if err != nil {
				return dropped, restored, err
			}
		}
	}
	return dropped, restored, nil
}

// findDir finds the directory with inode ino in the tree or in the attic.
func (f *FS) findDir(ino uint64) (string, bool, error) {
	var found string
	for _, top := range []string{f.disk, f.attic} {
		err := filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || found != "" {
				return err
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(path, &st); err != nil {
				return err
			}
			if st.Ino == ino {
				found = path
				return filepath.SkipAll
			}
			return nil
		})
		if err != nil {
			return "", false, fmt.Errorf("faultfs: looking for directory %d: %w", ino, err)
		}
		if found != "" {
			return found, true, nil
		}
	}
	return "", false, nil
}

func (f *FS) dropEntries(dir string, snap map[string]entry) ([]string, error) {
	cur, err := readEntries(dir)
	if err != nil {
		return nil, err
	}
	var n []string
	for name, e := range cur {
		if s, ok := snap[name]; ok && s == e {
			continue
		}
		p := filepath.Join(dir, name)
		if e.isDir {
			// Kept whole in the attic: it may hold durable entries that come back
			// elsewhere, or be the durable directory of another name.
			err = os.Rename(p, f.atticDir(e.ino))
		} else {
			err = os.Remove(p)
		}
		if err != nil {
			return n, fmt.Errorf("faultfs: undoing %s: %w", p, err)
		}
		n = append(n, name)
	}
	return n, nil
}

func (f *FS) restoreEntries(dir string, snap map[string]entry) ([]string, error) {
	cur, err := readEntries(dir)
	if err != nil {
		return nil, err
	}
	var n []string
	for name, s := range snap {
		if c, ok := cur[name]; ok && c == s {
			continue
		}
		p := filepath.Join(dir, name)
		if s.isDir {
			err = f.restoreDir(s.ino, p)
		} else {
			err = os.Link(f.atticFile(s.ino), p)
		}
		if err != nil {
			return n, fmt.Errorf("faultfs: restoring %s: %w", p, err)
		}
		n = append(n, name)
	}
	return n, nil
}

// restoreDir puts the durable directory ino back at p: moved back from where it went, or
// made anew (empty) when it was removed.
func (f *FS) restoreDir(ino uint64, p string) error {
	src, ok, err := f.findDir(ino)
	if err != nil {
		return err
	}
	if ok && !strings.HasPrefix(p+"/", src+"/") {
		return os.Rename(src, p)
	}
	return os.Mkdir(p, 0o750)
}

// Durable returns what the file at rel (relative to the mount point) would hold after a cut
// made now, without cutting: the content at its last fsync, under the name its directories
// last made durable. It fails with an error wrapping os.ErrNotExist when a cut would leave
// no file there. Tests use it to find the moment a write became durable.
func (f *FS) Durable(rel string) ([]byte, error) {
	f.ops.Lock() // no operation half done: a consistent view
	defer f.ops.Unlock()
	if f.down {
		return nil, errors.New("faultfs: cut or unmounted")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := f.disk
	parts := strings.Split(filepath.Clean(rel), string(filepath.Separator))
	var target entry
	for i, name := range parts {
		var st syscall.Stat_t
		if err := syscall.Lstat(dir, &st); err != nil {
			return nil, err
		}
		ents, ok := f.dirs[st.Ino]
		if !ok {
			var err error
			if ents, err = readEntries(dir); err != nil {
				return nil, err
			}
		}
		e, ok := ents[name]
		if !ok {
			return nil, fmt.Errorf("faultfs: %s after a cut: %w", rel, os.ErrNotExist)
		}
		if i == len(parts)-1 {
			target = e
			break
		}
		next, found, err := f.findDir(e.ino)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("faultfs: %s after a cut: %w", rel, os.ErrNotExist)
		}
		dir = next
	}
	if target.isDir {
		return nil, fmt.Errorf("faultfs: %s is a directory", rel)
	}
	path, err := f.inodePath(target.ino)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st := f.files[target.ino]
	if st == nil {
		return data, nil
	}
	durable := make([]byte, st.durableSize)
	copy(durable, data)
	for b, old := range st.undo {
		start := b * BlockSize
		if start >= st.durableSize {
			continue
		}
		end := min(start+BlockSize, st.durableSize)
		copy(durable[start:end], make([]byte, end-start))
		copy(durable[start:end], old)
	}
	return durable, nil
}

// inodePath finds a current name of the file with inode ino: in the tree, or in the attic
// where removed and replaced files are kept. Called with f.mu held.
func (f *FS) inodePath(ino uint64) (string, error) {
	if _, err := os.Lstat(f.atticFile(ino)); err == nil {
		return f.atticFile(ino), nil
	}
	var found string
	err := filepath.WalkDir(f.disk, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		if st.Ino == ino {
			found = path
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", fmt.Errorf("faultfs: inode %d has no name: %w", ino, os.ErrNotExist)
	}
	return found, nil
}

var staleOnce sync.Once

// detachStale detaches the faultfs mounts of test processes that died without unmounting
// (a panic outside the test goroutine skips every cleanup): their mount points answer
// "transport endpoint is not connected". Live mounts, also those of other test processes
// running now, answer normally and are left alone. A mount point that does not answer
// within a second is left alone too.
func detachStale() {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[2] != "fuse.faultfs" {
			continue
		}
		mnt := strings.ReplaceAll(fields[1], `\040`, " ")
		answered := make(chan error, 1)
		go func() {
			_, err := os.Stat(mnt)
			answered <- err
		}()
		select {
		case err := <-answered:
			if errors.Is(err, syscall.ENOTCONN) {
				_ = syscall.Unmount(mnt, syscall.MNT_FORCE)
				_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
			}
		case <-time.After(time.Second):
		}
	}
}
