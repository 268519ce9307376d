package wal

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const segmentSuffix = ".seg"

// SegmentName is the file name of the segment whose first record has sequence number first.
// Naming segments by sequence number lets the queue count records (head minus read
// position) without scanning sealed segments on open.
func SegmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentSuffix) }

// Segment describes one segment file.
type Segment struct {
	First uint64 // sequence number of its first record
	Size  int64  // bytes on disk
}

// ListSegments returns the segments in dir, oldest first. Other files are ignored.
func ListSegments(fsys FS, dir string) ([]Segment, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: listing %s: %w", dir, err)
	}
	var segs []Segment
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("wal: stat %s: %w", filepath.Join(dir, name), err)
		}
		segs = append(segs, Segment{First: first, Size: info.Size()})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].First < segs[j].First })
	return segs, nil
}
