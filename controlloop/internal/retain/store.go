package alarm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Store keeps the latched alarms of every loop in one small JSON file. Each Save replaces
// the file atomically: write a temporary file in the same directory, fsync it, rename it over
// the old one and fsync the directory, so that after a power cut the file is either the old
// or the new version, never a torn mix, and the rename itself is durable.
type Store struct {
	path string
}

type fileFormat struct {
	Version int                 `json:"version"`
	Loops   map[string][]string `json:"loops"`
}

const formatVersion = 1

// NewStore uses the file at path, creating its directory if needed.
func NewStore(path string) (*Store, error) {
	if err := mkdirAllDurable(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("creating the directory of latch_file %q: %w", path, err)
	}
	return &Store{path: path}, nil
}

// mkdirAllDurable creates dir and its missing parents, then fsyncs the parent of each one
// it created: a new directory's name lives in its parent, and without that fsync a power
// cut can take the directory away with the latch file that was fsynced inside it.
func mkdirAllDurable(dir string) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			break // exists, or an error MkdirAll reports below
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(created[i])); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %q for fsync: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync directory %q: %w", dir, err)
	}
	return d.Close()
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Load returns the latched alarm names per loop. A missing file is an empty state (first
// start). A file that cannot be parsed is an error: silently treating it as "nothing
// latched" would re-arm a tripped machine.
func (s *Store) Load() (map[string][]string, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading latch file %q: %w", s.path, err)
	}
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("latch file %q is corrupt (%w); inspect it, then delete it to start with no latched alarms", s.path, err)
	}
	if f.Version != formatVersion {
		return nil, fmt.Errorf("latch file %q has version %d, this build reads version %d", s.path, f.Version, formatVersion)
	}
	if f.Loops == nil {
		f.Loops = map[string][]string{}
	}
	return f.Loops, nil
}

// Save replaces the file with latched (loop name -> alarm names).
func (s *Store) Save(latched map[string][]string) error {
	f := fileFormat{Version: formatVersion, Loops: map[string][]string{}}
	for loop, names := range latched {
		if len(names) == 0 {
			continue
		}
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		f.Loops[loop] = sorted
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding latches: %w", err)
	}
	return writeAtomic(s.path, append(b, '\n'))
}

func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary latch file in %q: %w", dir, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing %q: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("fsync %q: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing %q: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming %q to %q: %w", tmp.Name(), path, err)
	}
	return syncDir(dir)
}
