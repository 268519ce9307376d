package diskqueueexporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckUsableNamesWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "a", "b")
	ok := machine{
		access: func(string, uint32) error { return nil },
		free:   func(string) (uint64, error) { return 1 << 30, nil },
	}
	cases := []struct {
		name string
		m    func(*machine, *string)
		dir  string
		want string // "" = usable
	}{
		{name: "usable", dir: dir},
		{name: "read-only", dir: dir, want: "read-only file system",
			m: func(m *machine, _ *string) { m.access = func(string, uint32) error { return unix.EROFS } }},
		{name: "no permission", dir: dir, want: "not writable by uid",
			m: func(m *machine, _ *string) { m.access = func(string, uint32) error { return unix.EACCES } }},
		{name: "full", dir: dir, want: "less than two segments",
			m: func(m *machine, _ *string) { m.free = func(string) (uint64, error) { return 1000, nil } }},
		{name: "to be created: the parent is asked", dir: missing, want: "to be created in " + `"` + dir + `"`,
			m: func(m *machine, asked *string) {
				m.access = func(p string, _ uint32) error { *asked = p; return unix.EROFS }
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ok
			var asked string
			if c.m != nil {
				c.m(&m, &asked)
			}
			err := checkUsable(m, c.dir, 4096)
			if c.want == "" {
				if err != nil {
					t.Fatalf("usable directory refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir) {
				t.Fatalf("want an error naming %q and containing %q, got %v", c.dir, c.want, err)
			}
			if asked != "" && asked != dir {
				t.Fatalf("asked about %q, want the nearest existing parent %q", asked, dir)
			}
		})
	}
}

// The real system: a fresh temporary directory is usable, and one made read-only is
// refused unless the test runs as root (root may write anyway, as access(2) says).
func TestCheckUsableOnThisMachine(t *testing.T) {
	dir := t.TempDir()
	if err := checkUsable(hostMachine, filepath.Join(dir, "queue"), 1<<20); err != nil {
		t.Fatalf("a fresh temporary directory: %v", err)
	}
	if os.Getuid() == 0 {
		return
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := checkUsable(hostMachine, dir, 1<<20); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("a directory without write permission: %v", err)
	}
}
