// Package cpuquota puts processes under a CPU quota with a control group of their own, as
// a container's CPU limit does: the cgroup v1 cpu controller (cpu.cfs_quota_us of
// cpu.cfs_period_us) where it is mounted, cgroup v2's cpu.max where the unified hierarchy
// has the cpu controller. A test makes its groups, moves its processes in, and removes the
// groups at the end; nothing else on the machine is touched.
package cpuquota

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Roots of the two hierarchies; variables so that a test can point them elsewhere.
var (
	v1Root = "/sys/fs/cgroup/cpu"
	v2Root = "/sys/fs/cgroup"
)

// Period is the scheduler period every group is given: a quota is a share of it.
const Period = 100 * time.Millisecond

// Group is a control group with a CPU quota.
type Group struct {
	// Dir is the group's directory in the cgroup file system.
	Dir string
	// ProcsFile is where a process id is written to move the process into the group.
	ProcsFile string
	// Cores is the quota in cores (0.25: a quarter of one core per period).
	Cores float64
	v2    bool
}

// Available says whether groups can be made here, and why not.
func Available() error {
	if _, err := v1Dir(); err == nil {
		return nil
	}
	if _, err := v2Dir(); err == nil {
		return nil
	}
	return errors.New("no writable cpu controller: neither cgroup v1 at " + v1Root + " nor cgroup v2 with the cpu controller at " + v2Root + " (run as root, outside a container that hides them)")
}

func v1Dir() (string, error) {
	if _, err := os.Stat(filepath.Join(v1Root, "cpu.cfs_quota_us")); err != nil {
		return "", err
	}
	return v1Root, writable(v1Root)
}

func v2Dir() (string, error) {
	b, err := os.ReadFile(filepath.Join(v2Root, "cgroup.subtree_control"))
	if err != nil {
		return "", err
	}
	if !hasWord(string(b), "cpu") {
		return "", errors.New("cgroup v2 without the cpu controller enabled for children")
	}
	return v2Root, writable(v2Root)
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func writable(dir string) error {
	probe := filepath.Join(dir, fmt.Sprintf("fieldcol-probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return err
	}
	return os.Remove(probe)
}

// New makes the group name (a single path element) with a quota of cores.
func New(name string, cores float64) (*Group, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("cpuquota: group name %q must be one path element", name)
	}
	if cores <= 0 {
		return nil, fmt.Errorf("cpuquota: quota %g cores must be positive", cores)
	}
	quota := int64(cores * float64(Period/time.Microsecond))
	period := int64(Period / time.Microsecond)
	if root, err := v1Dir(); err == nil {
		g := &Group{Dir: filepath.Join(root, name), Cores: cores}
		g.ProcsFile = filepath.Join(g.Dir, "cgroup.procs")
		if err := os.Mkdir(g.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("cpuquota: %w", err)
		}
		if err := errors.Join(
			write(filepath.Join(g.Dir, "cpu.cfs_period_us"), strconv.FormatInt(period, 10)),
			write(filepath.Join(g.Dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10)),
		); err != nil {
			_ = os.Remove(g.Dir)
			return nil, err
		}
		return g, nil
	}
	root, err := v2Dir()
	if err != nil {
		return nil, Available()
	}
	g := &Group{Dir: filepath.Join(root, name), Cores: cores, v2: true}
	g.ProcsFile = filepath.Join(g.Dir, "cgroup.procs")
	if err := os.Mkdir(g.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cpuquota: %w", err)
	}
	if err := write(filepath.Join(g.Dir, "cpu.max"), fmt.Sprintf("%d %d", quota, period)); err != nil {
		_ = os.Remove(g.Dir)
		return nil, err
	}
	return g, nil
}

// NewWeighted makes the group name without a quota and with factor times the default CPU
// weight (cpu.shares on v1, cpu.weight on v2): what a benchmark gives the processes that
// drive and measure the quota'd ones, so that on a machine shared with other work the
// driver is not the limit it measures.
func NewWeighted(name string, factor int) (*Group, error) {
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("cpuquota: group name %q must be one path element", name)
	}
	if factor < 1 || factor > 100 {
		return nil, fmt.Errorf("cpuquota: weight factor %d must be 1 to 100", factor)
	}
	root, err := v1Dir()
	file, value, v2 := "cpu.shares", strconv.Itoa(1024*factor), false
	if err != nil {
		if root, err = v2Dir(); err != nil {
			return nil, Available()
		}
		file, value, v2 = "cpu.weight", strconv.Itoa(100*factor), true
	}
	g := &Group{Dir: filepath.Join(root, name), v2: v2}
	g.ProcsFile = filepath.Join(g.Dir, "cgroup.procs")
	if err := os.Mkdir(g.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cpuquota: %w", err)
	}
	if err := write(filepath.Join(g.Dir, file), value); err != nil {
		_ = os.Remove(g.Dir)
		return nil, err
	}
	return g, nil
}

func write(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("cpuquota: writing %s to %s: %w", value, path, err)
	}
	return nil
}

// Add moves process pid (all its threads) into the group.
func (g *Group) Add(pid int) error { return write(g.ProcsFile, strconv.Itoa(pid)) }

// AddSelf moves the calling process into the group and returns what moves it back to
// the group it was in.
func (g *Group) AddSelf() (restore func() error, err error) {
	from, err := g.currentDir()
	if err != nil {
		return nil, err
	}
	if err := g.Add(os.Getpid()); err != nil {
		return nil, err
	}
	return func() error { return write(filepath.Join(from, "cgroup.procs"), strconv.Itoa(os.Getpid())) }, nil
}

// currentDir is the directory of the calling process's group in the group's hierarchy.
func (g *Group) currentDir() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	root := filepath.Dir(g.Dir)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controller-list:path; v2's line is "0::path".
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if (g.v2 && f[0] == "0") || (!g.v2 && hasWord(strings.ReplaceAll(f[1], ",", " "), "cpu")) {
			return filepath.Join(root, f[2]), nil
		}
	}
	return "", fmt.Errorf("cpuquota: this process's cpu group is not in /proc/self/cgroup")
}

// Throttled is how long the group's processes were held back by the quota so far.
func (g *Group) Throttled() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	key, unit := "throttled_time", time.Nanosecond // v1: nanoseconds
	if g.v2 {
		key, unit = "throttled_usec", time.Microsecond
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cpuquota: %s in %s: %w", key, g.Dir, err)
			}
			return time.Duration(n) * unit, nil
		}
	}
	return 0, fmt.Errorf("cpuquota: no %s in %s/cpu.stat", key, g.Dir)
}

// Remove deletes the group once its processes have exited; a process still in it is moved
// back to the root group first, so that Remove never leaves a group behind.
func (g *Group) Remove() error {
	b, err := os.ReadFile(g.ProcsFile)
	if err == nil {
		root := filepath.Join(filepath.Dir(g.Dir), "cgroup.procs")
		for _, pid := range strings.Fields(string(b)) {
			_ = write(root, pid)
		}
	}
	var last error
	// The kernel refuses rmdir for a moment after the last process left.
	for range 50 {
		if last = os.Remove(g.Dir); last == nil || errors.Is(last, os.ErrNotExist) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cpuquota: removing %s: %w", g.Dir, last)
}
