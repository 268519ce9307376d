package diskqueueexporter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// machine is what checkUsable asks of the system; tests replace it.
type machine struct {
	access func(path string, mode uint32) error
	free   func(path string) (uint64, error) // bytes an unprivileged writer may use
}

var hostMachine = machine{
	access: unix.Access,
	free: func(path string) (uint64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(path, &st); err != nil {
			return 0, err
		}
		return st.Bavail * uint64(st.Bsize), nil
	},
}

// checkUsable reports what would make dir unusable right now for the user who runs
// `validate`: no write permission, a read-only file system, or less free space than two
// segments (one to write while the oldest is sent). It looks at dir, or its nearest
// existing parent when dir is still to be created, and changes nothing. Only the validate
// subcommand runs it: at a start these conditions degrade the exporter instead (they can
// heal by themselves), see degraded.go.
func checkUsable(m machine, dir string, segmentSize int64) error {
	p := filepath.Clean(dir)
	for {
		if _, err := os.Stat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		p = filepath.Dir(p)
	}
	what := fmt.Sprintf("directory %q", dir)
	if p != filepath.Clean(dir) {
		what = fmt.Sprintf("directory %q (to be created in %q)", dir, p)
	}
	switch err := m.access(p, unix.W_OK|unix.X_OK); {
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("%s is on a read-only file system: the queue could not store anything", what)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s is not writable by uid %d: give the service user write access (validate checks for the user who runs it)", what, os.Getuid())
	case err != nil:
		return fmt.Errorf("%s cannot be checked: %w", what, err)
	}
	free, err := m.free(p)
	if err != nil {
		return fmt.Errorf("%s: free space cannot be read: %w", what, err)
	}
	if need := uint64(2 * segmentSize); free < need {
		return fmt.Errorf("%s: its file system has %d bytes free, less than two segments (%d): the queue would refuse data at once", what, free, need)
	}
	return nil
}
