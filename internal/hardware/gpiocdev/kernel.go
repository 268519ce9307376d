package gpiocdev

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel is what the package needs of the operating system: the seam under which tests put
// FakeKernel.
type Kernel interface {
	// Open opens a chip's character device.
	Open(path string) (File, error)
	// File takes ownership of a file descriptor an ioctl returned (a line request's).
	File(fd int, name string) (File, error)
}

// File is an open chip or line request.
type File interface {
	// Ioctl runs the ioctl req with arg as its in/out struct.
	Ioctl(req uint32, arg []byte) error
	// Read reads whole events; it waits until the read deadline for the first one, and
	// returns an error wrapping os.ErrDeadlineExceeded when it passed first, or
	// os.ErrClosed once the file is closed (also when Close ends a wait).
	Read(p []byte) (int, error)
	// SetReadDeadline bounds the next reads; the zero time waits for ever.
	SetReadDeadline(t time.Time) error
	// Close releases the file; a line request's close releases the line.
	Close() error
}

// osKernel is the real kernel.
type osKernel struct{}

func (osKernel) Open(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// File makes the line request's fd non-blocking before os.NewFile sees it, so that the
// runtime's poller waits on it: a read then honours its deadline, and Close from another
// goroutine ends a read in progress (a blocking read(2) would hold the thread until an edge).
func (osKernel) File(fd int, name string) (File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("setting the request fd non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if f == nil {
		return nil, fmt.Errorf("fd %d is not a valid file", fd)
	}
	return osFile{f}, nil
}

type osFile struct{ *os.File }

func (f osFile) Ioctl(req uint32, arg []byte) error {
	if len(arg) == 0 {
		return syscall.EINVAL
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	// Control keeps the fd open for the duration of the call, even if Close runs concurrently.
	cerr := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&arg[0])))
	})
	runtime.KeepAlive(arg)
	if cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}
