package promtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A real Prometheus scrapes a test endpoint and evaluates a recording rule over it.
func TestScrapeAndRecordingRule(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "# TYPE widgets_total counter")
		fmt.Fprintln(w, `widgets_total{color="blue"} 42`)
	}))
	defer target.Close()

	rules := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`groups:
  - name: test
    rules:
      - record: color:widgets:sum
        expr: sum by (color) (widgets_total) * 2
`), 0o600))

	s := Start(t, Options{ScrapeTargets: []string{strings.TrimPrefix(target.URL, "http://")}, RuleFiles: []string{rules}})
	got := s.WaitFor(t, `widgets_total{color="blue"}`, 30*time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, 42.0, got[0].Value)
	assert.Equal(t, "fieldcol", got[0].Labels["job"])

	recorded := s.WaitFor(t, `color:widgets:sum`, 30*time.Second)
	assert.Equal(t, 84.0, recorded[0].Value)
	assert.Equal(t, "blue", recorded[0].Labels["color"])

	scalar := s.WaitFor(t, `scalar(vector(3))`, 5*time.Second)
	assert.Equal(t, 3.0, scalar[0].Value)
}
