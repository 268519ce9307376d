package faultfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a loopback node whose every change of content or name is recorded before it
// reaches the backing directory. Operations that only read go to the loopback as they are.
type node struct {
	*fs.LoopbackNode
	fsys *FS
}

// The loopback versions of these would change the disk behind faultfs's back (or, for
// Open and Create, hand the kernel a passthrough descriptor that bypasses it).
var (
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeWrapChilder    = (*node)(nil)
)

// WrapChild makes every node that the loopback creates a faultfs node.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if lb, ok := ops.(*fs.LoopbackNode); ok {
		return &node{LoopbackNode: lb, fsys: n.fsys}
	}
	return ops
}

// path is the node's path in the backing directory.
func (n *node) path() string {
	return filepath.Join(n.fsys.disk, n.Path(n.Root()))
}

func (n *node) child(name string) string { return filepath.Join(n.path(), name) }

func toErrno(err error) syscall.Errno { return fs.ToErrno(err) }

// changeDir runs op, a change of the entries of the directories dirs, after recording
// them as they were at their last fsync and keeping the inodes at victims (names about
// to be removed or replaced) in the attic.
func (n *node) changeDir(dirs, victims []string, op func() syscall.Errno) syscall.Errno {
	done, errno := n.fsys.begin()
	if errno != 0 {
		return errno
	}
	defer done()
	f := n.fsys
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range dirs {
		if err := f.snapshotDir(d); err != nil {
			return toErrno(err)
		}
	}
	for _, v := range victims {
		if err := f.keep(v); err != nil {
			return toErrno(err)
		}
	}
	return op()
}

// Mkdir creates a directory.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var ch *fs.Inode
	errno := n.changeDir([]string{n.path()}, nil, func() (e syscall.Errno) {
		ch, e = n.LoopbackNode.Mkdir(ctx, name, mode, out)
		return e
	})
	return ch, errno
}

// Mknod creates a special file.
func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var ch *fs.Inode
	errno := n.changeDir([]string{n.path()}, nil, func() (e syscall.Errno) {
		ch, e = n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
		return e
	})
	return ch, errno
}

// Symlink creates a symbolic link.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var ch *fs.Inode
	errno := n.changeDir([]string{n.path()}, nil, func() (e syscall.Errno) {
		ch, e = n.LoopbackNode.Symlink(ctx, target, name, out)
		return e
	})
	return ch, errno
}

// Link adds a name to a file.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var ch *fs.Inode
	errno := n.changeDir([]string{n.path()}, nil, func() (e syscall.Errno) {
		ch, e = n.LoopbackNode.Link(ctx, target, name, out)
		return e
	})
	return ch, errno
}

// Unlink removes a name; the inode stays in the attic so a cut can give it back.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.changeDir([]string{n.path()}, []string{n.child(name)}, func() syscall.Errno {
		return n.LoopbackNode.Unlink(ctx, name)
	})
}

// Rmdir removes an (empty) directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.changeDir([]string{n.path()}, nil, func() syscall.Errno {
		return n.LoopbackNode.Rmdir(ctx, name)
	})
}

// Rename changes both directories; a replaced target stays in the attic.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	return n.changeDir([]string{n.path(), np.path()}, []string{np.child(newName)}, func() syscall.Errno {
		return n.LoopbackNode.Rename(ctx, name, np, newName, flags)
	})
}

// Create creates and opens a file. Its content starts empty and not durable; its name is
// durable only once the directory is fsynced.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	var (
		ch *fs.Inode
		fh fs.FileHandle
	)
	p := n.child(name)
	errno := n.changeDir([]string{n.path()}, nil, func() syscall.Errno {
		f := n.fsys
		// The kernel may send CREATE for a name that exists (O_CREAT without O_EXCL).
		if existing, err := os.Open(p); err == nil {
			defer func() { _ = existing.Close() }()
			if flags&syscall.O_TRUNC != 0 {
				if errno := f.recordTruncate(existing, 0); errno != 0 {
					return errno
				}
			}
		}
		// Always readable: saving a block's durable bytes before a write reads them.
		file, err := os.OpenFile(p, int(flags)&^(syscall.O_APPEND|syscall.O_ACCMODE)|os.O_RDWR|os.O_CREATE, os.FileMode(mode))
		if err != nil {
			return toErrno(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(file.Fd()), &st); err != nil {
			_ = file.Close()
			return toErrno(err)
		}
		if _, tracked := f.files[st.Ino]; !tracked && st.Size == 0 {
			f.files[st.Ino] = &fileState{undo: map[int64][]byte{}, poisoned: map[int64]bool{}}
		}
		// Look the new entry up the ordinary way, so the kernel gets the same inode
		// numbers and attributes as for any other lookup.
		ch, err = lookup(ctx, n, name, out)
		if err != nil {
			_ = file.Close()
			return toErrno(err)
		}
		fh = &handle{lf: fs.NewLoopbackFileFromOS(file), file: file, fsys: f, ino: st.Ino, name: name}
		return 0
	})
	return ch, fh, 0, errno
}

func lookup(ctx context.Context, n *node, name string, out *fuse.EntryOut) (*fs.Inode, error) {
	ch, errno := n.Lookup(ctx, name, out)
	if errno != 0 {
		return nil, errno
	}
	return ch, nil
}

// Open opens a file through faultfs's own handle (never a passthrough descriptor).
func (n *node) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	done, errno := n.fsys.begin()
	if errno != 0 {
		return nil, 0, errno
	}
	defer done()
	f := n.fsys
	p := n.path()
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	if flags&syscall.O_TRUNC != 0 {
		f.mu.Lock()
		existing, err := os.Open(p)
		if err == nil {
			errno = f.recordTruncate(existing, 0)
			_ = existing.Close()
		}
		if err == nil && errno == 0 {
			errno = openErr(os.Truncate(p, 0))
		}
		f.mu.Unlock()
		if err != nil {
			return nil, 0, toErrno(err)
		}
		if errno != 0 {
			return nil, 0, errno
		}
		flags &^= syscall.O_TRUNC
	}
	// Always readable: saving a block's durable bytes before a write reads them (the kernel
	// still enforces the caller's access mode).
	file, err := os.OpenFile(p, int(flags)&^syscall.O_ACCMODE|os.O_RDWR, 0)
	if err != nil {
		return nil, 0, toErrno(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(file.Fd()), &st); err != nil {
		_ = file.Close()
		return nil, 0, toErrno(err)
	}
	return &handle{lf: fs.NewLoopbackFileFromOS(file), file: file, fsys: f, ino: st.Ino, name: filepath.Base(p)}, 0, 0
}

func openErr(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return toErrno(err)
}

// recordTruncate saves what truncating file to size removes. Called with f.mu held.
func (f *FS) recordTruncate(file *os.File, size int64) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(file.Fd()), &st); err != nil {
		return toErrno(err)
	}
	fst, err := f.state(st.Ino, file)
	if err != nil {
		return toErrno(err)
	}
	return openErr(fst.truncating(file, size))
}

// Setattr records a size change before the loopback makes it.
func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	done, errno := n.fsys.begin()
	if errno != 0 {
		return errno
	}
	defer done()
	if size, ok := in.GetSize(); ok {
		f := n.fsys
		f.mu.Lock()
		defer f.mu.Unlock()
		var file *os.File
		if h, ok := fh.(*handle); ok {
			file = h.file
		} else {
			opened, err := os.Open(n.path())
			if err != nil {
				return toErrno(err)
			}
			defer func() { _ = opened.Close() }()
			file = opened
		}
		if errno := f.recordTruncate(file, int64(size)); errno != 0 {
			return errno
		}
	}
	var inner fs.FileHandle
	if h, ok := fh.(*handle); ok {
		inner = h.lf
	}
	return n.LoopbackNode.Setattr(ctx, inner, in, out)
}

// OpendirHandle returns a directory handle whose fsync makes the entries durable.
func (n *node) OpendirHandle(_ context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	done, errno := n.fsys.begin()
	if errno != 0 {
		return nil, 0, errno
	}
	defer done()
	return &dirHandle{n: n}, 0, 0
}

// CopyFileRange is refused so the kernel falls back to reads and writes that faultfs sees.
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.EOPNOTSUPP
}

// Tmpfile (O_TMPFILE) is refused: an unnamed inode linked in later is not tracked.
func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

// dirHandle is an open directory.
type dirHandle struct {
	n  *node
	ds fs.DirStream
}

func (d *dirHandle) stream() syscall.Errno {
	if d.ds != nil {
		return 0
	}
	ds, errno := fs.NewLoopbackDirStream(d.n.path())
	if errno != 0 {
		return errno
	}
	d.ds = ds
	return 0
}

// Readdirent returns the next entry.
func (d *dirHandle) Readdirent(_ context.Context) (*fuse.DirEntry, syscall.Errno) {
	done, errno := d.n.fsys.begin()
	if errno != 0 {
		return nil, errno
	}
	defer done()
	if errno := d.stream(); errno != 0 {
		return nil, errno
	}
	if !d.ds.HasNext() {
		return nil, 0
	}
	e, errno := d.ds.Next()
	return &e, errno
}

// Seekdir rewinds or seeks the listing.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if errno := d.stream(); errno != 0 {
		return errno
	}
	if sd, ok := d.ds.(fs.FileSeekdirer); ok {
		return sd.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

// Releasedir closes the listing.
func (d *dirHandle) Releasedir(_ context.Context, _ uint32) {
	if d.ds != nil {
		d.ds.Close()
	}
}

// Fsyncdir makes the directory's current entries durable.
func (d *dirHandle) Fsyncdir(_ context.Context, _ uint32) syscall.Errno {
	f := d.n.fsys
	p := d.n.path()
	// Faults (and a slow fsync's wait) come before admission, so a cut can land while a
	// slow fsync is still under way, which then fails, as on a card that lost power.
	injected := f.fault(OpDirFsync, p)
	done, errno := f.begin()
	if errno != 0 {
		return errno
	}
	defer done()
	if injected != 0 {
		return injected
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return toErrno(err)
	}
	f.mu.Lock()
	delete(f.dirs, st.Ino)
	f.stats.DirFsyncs++
	f.mu.Unlock()
	return 0
}

// handle is an open file. Writes record the blocks they dirty; fsync makes them durable
// (the backing file is never really fsynced: the machine running the test does not lose
// power, so the page cache of the backing file system is the simulated disk).
type handle struct {
	lf   *fs.LoopbackFile
	file *os.File
	fsys *FS
	ino  uint64
	name string
}

// Write records and writes.
func (h *handle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	done, errno := h.fsys.begin()
	if errno != 0 {
		return 0, errno
	}
	defer done()
	f := h.fsys
	if errno := f.fault(OpWrite, h.name); errno != 0 {
		return 0, errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.state(h.ino, h.file)
	if err != nil {
		return 0, toErrno(err)
	}
	if err := st.dirty(h.file, off, int64(len(data))); err != nil {
		return 0, toErrno(err)
	}
	f.stats.Writes++
	n, err := h.file.WriteAt(data, off)
	if err != nil {
		return uint32(n), toErrno(err) //nolint:gosec // n <= len(data), which FUSE bounds by max_write
	}
	return uint32(n), 0 //nolint:gosec // as above
}

// Writev writes data given in several slices.
func (h *handle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var buf []byte
	for _, d := range data {
		buf = append(buf, d...)
	}
	return h.Write(ctx, buf, off)
}

// Allocate is a write of zeros as far as a cut is concerned.
func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	done, errno := h.fsys.begin()
	if errno != 0 {
		return errno
	}
	defer done()
	f := h.fsys
	if errno := f.fault(OpWrite, h.name); errno != 0 {
		return errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.state(h.ino, h.file)
	if err != nil {
		return toErrno(err)
	}
	if err := st.dirty(h.file, int64(off), int64(size)); err != nil { //nolint:gosec // file offsets fit in int64
		return toErrno(err)
	}
	return h.lf.Allocate(ctx, off, size, mode)
}

// Fsync makes the file's content durable, or fails and loses it (see the package comment).
func (h *handle) Fsync(_ context.Context, _ uint32) syscall.Errno {
	f := h.fsys
	injected := f.fault(OpFsync, h.name) // before admission: see Fsyncdir
	done, errno := f.begin()
	if errno != 0 {
		return errno
	}
	defer done()
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := f.state(h.ino, h.file)
	if err != nil {
		return toErrno(err)
	}
	if injected != 0 {
		st.failedSync()
		return injected
	}
	info, err := h.file.Stat()
	if err != nil {
		return toErrno(err)
	}
	st.synced(info.Size())
	f.stats.Fsyncs++
	return 0
}

// Read reads.
func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	done, errno := h.fsys.begin()
	if errno != 0 {
		return nil, errno
	}
	defer done()
	return h.lf.Read(ctx, dest, off)
}

// Release closes the backing file.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	errno := h.lf.Release(ctx)
	if errors.Is(errno, syscall.EBADF) {
		return 0
	}
	return errno
}

// Flush is called on every close(2) of a descriptor; it changes nothing durable.
func (h *handle) Flush(ctx context.Context) syscall.Errno { return h.lf.Flush(ctx) }

// Getattr reports the backing file's attributes.
func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}

// Setattr is reached through node.Setattr, which records a size change first.
func (h *handle) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Setattr(ctx, in, out)
}

// Lseek supports SEEK_DATA and SEEK_HOLE.
func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

// Getlk tests a POSIX lock.
func (h *handle) Getlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	return h.lf.Getlk(ctx, owner, lk, flags, out)
}

// Setlk takes a POSIX lock.
func (h *handle) Setlk(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return h.lf.Setlk(ctx, owner, lk, flags)
}

// Setlkw waits for a POSIX lock.
func (h *handle) Setlkw(ctx context.Context, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return h.lf.Setlkw(ctx, owner, lk, flags)
}
