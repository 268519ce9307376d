package wal

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fieldcol/fieldcol/internal/faultfs"
)

// TestNewQueueDirectorySurvivesAPowerCut is the bug faultfs found: Open created the queue
// directory without fsyncing its parent, so a power cut before anyone else fsynced that
// parent removed the directory with every acknowledged record in it.
func TestNewQueueDirectorySurvivesAPowerCut(t *testing.T) {
	fsys := faultfs.MountT(t, "", faultfs.Options{})
	dir := filepath.Join(fsys.Dir(), "diskqueue", "logs")
	l, _, err := Open(OSFS{}, dir, Options{SegmentSize: 1 << 20, SyncOnRotate: true})
	require.NoError(t, err)
	require.NoError(t, l.Append([][]byte{frames(t, "acknowledged")}, 1))
	require.NoError(t, l.Commit(true))
	_, err = fsys.Cut()
	require.NoError(t, err)
	_ = l.Close(false) // the disk is gone

	segs, err := ListSegments(OSFS{}, filepath.Join(fsys.Backing(), "diskqueue", "logs"))
	require.NoError(t, err, "the queue directory must survive the cut")
	require.Len(t, segs, 1)
	assert.Equal(t, FrameSize(len("acknowledged")), segs[0].Size)
}
