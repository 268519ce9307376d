// Package retain keeps a control loop's retentive state across restarts: which alarms are
// latched, and what the operator set through the command API (mode, setpoint, ramp, output
// limit, speed, manual output, dry run), as a PLC keeps its retentive memory. Everything is
// in one small JSON file that each Save replaces atomically.
package retain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/fieldcol/fieldcol/internal/durable"
)

// Operator is what an operator set on one loop. Nil fields were never set and fall back
// to the configuration.
type Operator struct {
	Mode      string   `json:"mode,omitempty"`
	Setpoint  *float64 `json:"setpoint,omitempty"`
	MaxRate   *float64 `json:"max_rate,omitempty"`
	OutputMax *float64 `json:"output_max,omitempty"`
	Speed     *float64 `json:"speed,omitempty"`
	Manual    *float64 `json:"manual_output,omitempty"`
	// DryRunCleared records a CLEAR_DRY_RUN under a configuration that asks for dry run,
	// so that a warm restart does not fall back into it. A backup of a machine that never
	// ran dry has no such mark, so a restored Pi with the dry-run overlay starts dry.
	DryRunCleared bool `json:"dry_run_cleared,omitempty"`
}

// Loop is one loop's retentive state.
type Loop struct {
	Latched  []string  `json:"latched,omitempty"`
	Operator *Operator `json:"operator,omitempty"`
}

// State is the whole file.
type State struct {
	// Running is true from start until a clean shutdown: a file that still says running at
	// start-up was left by a crash, a kill or a power cut.
	Running bool            `json:"running"`
	Loops   map[string]Loop `json:"loops"`
	// Starts counts the starts since the file was created, by how the previous run ended,
	// so that controlloop.restarts is a counter that survives the restarts it counts.
	Starts Starts `json:"starts"`
}

// Starts counts starts after a clean stop (or the first start) and after an unclean one.
type Starts struct {
	Clean   uint64 `json:"clean"`
	Unclean uint64 `json:"unclean"`
}

// Latched returns the latched alarm names per loop.
func (s State) Latched() map[string][]string {
	out := make(map[string][]string, len(s.Loops))
	for name, l := range s.Loops {
		if len(l.Latched) > 0 {
			out[name] = l.Latched
		}
	}
	return out
}

// Store keeps the State in one file. Each Save replaces the file atomically: write a
// temporary file in the same directory, fsync it, rename it over the old one and fsync the
// directory, so that after a power cut the file is either the old or the new version, never
// a torn mix, and the rename itself is durable.
type Store struct {
	path string
	mu   sync.Mutex // one Save at a time: they share the temporary file
}

// The file's versions: 1 held latches only ({"loops":{"oven":["sensor_fault"]}}); 2 adds
// the operator's state and the running flag. Version 1 files are read.
const (
	formatV1      = 1
	formatVersion = 2
)

type fileFormat struct {
	Version int             `json:"version"`
	Running bool            `json:"running"`
	Starts  Starts          `json:"starts"`
	Loops   json.RawMessage `json:"loops"`
}

// NewStore uses the file at path, creating its directory if needed.
func NewStore(path string) (*Store, error) {
	if err := durable.MkdirAll(durable.OS{}, filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("creating the directory of latch_file %q: %w", path, err)
	}
	return &Store{path: path}, nil
}

// tmpPath is where Save writes before renaming over the file; a power cut may leave it
// behind, and the next Save overwrites it.
func (s *Store) tmpPath() string {
	return filepath.Join(filepath.Dir(s.path), "."+filepath.Base(s.path)+".tmp")
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Load returns the stored state; exists is false on a first start (no file). A file that
// cannot be parsed is an error: silently treating it as "nothing latched" would re-arm a
// tripped machine.
func (s *Store) Load() (st State, exists bool, err error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Loops: map[string]Loop{}}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading latch file %q: %w", s.path, err)
	}
	st, err = Decode(b)
	if err != nil {
		return State{}, true, fmt.Errorf("latch file %q: %w", s.path, err)
	}
	return st, true, nil
}

// Decode parses the file's bytes (both versions).
func Decode(b []byte) (State, error) {
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		return State{}, fmt.Errorf("is corrupt (%w); inspect it, then delete it to start with no latched alarms and the configuration's settings", err)
	}
	st := State{Running: f.Running, Starts: f.Starts, Loops: map[string]Loop{}}
	if len(f.Loops) == 0 || string(f.Loops) == "null" {
		if f.Version != formatV1 && f.Version != formatVersion {
			return State{}, fmt.Errorf("has version %d, this build reads versions %d and %d", f.Version, formatV1, formatVersion)
		}
		return st, nil
	}
	switch f.Version {
	case formatV1:
		var v1 map[string][]string
		if err := json.Unmarshal(f.Loops, &v1); err != nil {
			return State{}, fmt.Errorf("is corrupt (%w)", err)
		}
		for name, latched := range v1 {
			st.Loops[name] = Loop{Latched: latched}
		}
	case formatVersion:
		if err := json.Unmarshal(f.Loops, &st.Loops); err != nil {
			return State{}, fmt.Errorf("is corrupt (%w)", err)
		}
	default:
		return State{}, fmt.Errorf("has version %d, this build reads versions %d and %d", f.Version, formatV1, formatVersion)
	}
	return st, nil
}

// Save replaces the file with st.
func (s *Store) Save(st State) error {
	loops := make(map[string]Loop, len(st.Loops))
	for name, l := range st.Loops {
		if len(l.Latched) == 0 && l.Operator == nil {
			continue
		}
		l.Latched = slices.Clone(l.Latched)
		slices.Sort(l.Latched)
		loops[name] = l
	}
	raw, err := json.Marshal(loops)
	if err != nil {
		return fmt.Errorf("encoding the retentive state: %w", err)
	}
	b, err := json.MarshalIndent(fileFormat{Version: formatVersion, Running: st.Running, Starts: st.Starts, Loops: raw}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the retentive state: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return durable.WriteFile(durable.OS{}, s.path, s.tmpPath(), append(b, '\n'), 0o600)
}
