package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checker is tools/dashboard-check as make installs it (npm ci into .tools/): Grafana's own
// types (@grafana/schema) and tsc, at the versions of its package-lock.json.
func checker(t *testing.T) (tsc, modules string) {
	t.Helper()
	modules, err := filepath.Abs(filepath.Join("..", ".tools", "dashboard-check", "node_modules"))
	require.NoError(t, err)
	tsc = filepath.Join(modules, "typescript", "bin", "tsc")
	if _, err := os.Stat(tsc); err != nil {
		msg := "the dashboard type check is not installed (make .tools/dashboard-check/.installed: npm ci of tools/dashboard-check)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed (Debian package nodejs; scripts/ensure-debs.sh installs it): %v", err)
	}
	return tsc, modules
}

var tscError = regexp.MustCompile(`(?m)^(\S+)\.ts\((\d+),(\d+)\): (error TS\d+: .*)$`)

// typeCheck writes each dashboard JSON as `const dashboard: Dashboard = <the JSON>` (the
// JSON starts on the file's first line, so tsc's line numbers are the JSON's) and runs tsc
// over them; it returns one "file.json:line:col: error" line per finding.
func typeCheck(t *testing.T, files map[string][]byte) []string {
	t.Helper()
	tsc, modules := checker(t)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(modules, filepath.Join(dir, "node_modules")))
	types, err := os.ReadFile(filepath.Join("..", "tools", "dashboard-check", "grafana-dashboard.ts"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "grafana-dashboard.ts"), types, 0o600))
	for name, raw := range files {
		src := `import type { Dashboard } from "./grafana-dashboard"; export const dashboard: Dashboard = ` + string(raw) + ";\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.TrimSuffix(name, ".json")+".ts"), []byte(src), 0o600))
	}
	tsconfig := `{"compilerOptions": {"strict": true, "noEmit": true, "module": "esnext", "moduleResolution": "bundler",
	  "target": "es2022", "skipLibCheck": true, "types": []}, "include": ["*.ts"]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tsconfig.json"), []byte(tsconfig), 0o600))
	cmd := exec.Command("node", tsc, "-p", "tsconfig.json")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var findings []string
	for _, m := range tscError.FindAllStringSubmatch(string(out), -1) {
		findings = append(findings, m[1]+".json:"+m[2]+":"+m[3]+": "+m[4])
	}
	if err != nil {
		require.NotEmpty(t, findings, "tsc failed without a finding:\n%s", out)
	}
	return findings
}

// TestDashboardsMatchGrafanaSchema type-checks every committed dashboard against
// @grafana/schema 13.2.3 (tools/dashboard-check): an unknown field, a value outside an
// enum ("" for a tooltip mode) or a mistyped one fails.
func TestDashboardsMatchGrafanaSchema(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("json", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	in := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		in[filepath.Base(f)] = raw
	}
	assert.Empty(t, typeCheck(t, in), "Grafana's types refuse the committed dashboards")
}

// TestSchemaCheckFindsErrors: what the SDK let through before (empty enums, interval
// fields on a query variable) and a misspelt or mistyped field are found, each at the
// JSON's line (one tsc run over one broken copy per case).
func TestSchemaCheckFindsErrors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("json", "fieldcol-fleet.json"))
	require.NoError(t, err)
	cases := map[string]struct{ from, to, want string }{
		"empty-tooltip-mode":   {`"mode": "multi"`, `"mode": ""`, `'""' is not assignable`},
		"empty-orientation":    {`"orientation": "auto"`, `"orientation": ""`, `'""' is not assignable`},
		"interval-field":       {`"allValue": ".*"`, `"allValue": ".*", "auto_count": 30`, `'"auto_count"' does not exist`},
		"misspelt-panel-field": {`"transparent": false`, `"transparant": false`, `'"transparant"' does not exist`},
		"mistyped-threshold":   {`"color": "red"`, `"color": 1`, `not assignable to type 'string'`},
	}
	in := map[string][]byte{}
	lines := map[string]int{}
	for name, c := range cases {
		require.Contains(t, string(raw), c.from)
		bad := strings.Replace(string(raw), c.from, c.to, 1)
		in[name+".json"] = []byte(bad)
		lines[name] = strings.Count(bad[:strings.Index(bad, c.to)], "\n") + 1
	}
	findings := typeCheck(t, in)
	for name, c := range cases {
		prefix := name + ".json:" + strconv.Itoa(lines[name]) + ":"
		found := false
		for _, f := range findings {
			found = found || (strings.HasPrefix(f, prefix) && strings.Contains(f, c.want))
		}
		assert.True(t, found, "%s: no finding %q at line %d in %q", name, c.want, lines[name], findings)
	}
}
