// Package alerts holds fieldcol's Prometheus rules (rules/, slo/), their promtool tests
// (tests/, slo/*.test.yaml), the Alertmanager routing (alertmanager.yml) and the runbooks
// (runbooks/<AlertName>.md). The rule files ship with runbook_url under RunbookBaseURL;
// RebaseRunbooks (cmd/render) moves them under the base URL of another copy of the runbooks.
package alerts

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// RunbookBaseURL is where the shipped rules' runbook_url annotations point.
const RunbookBaseURL = "https://github.com/fieldcol/fieldcol/blob/main/alerts/runbooks/"

var runbookLine = regexp.MustCompile(`(?m)^(\s*runbook_url:\s*)` + regexp.QuoteMeta(RunbookBaseURL) + `(\S+\.md)[ \t]*$`)

// RebaseRunbooks returns a rule file with every runbook_url under RunbookBaseURL moved
// under base (e.g. an internal wiki that mirrors alerts/runbooks/), and how many it moved.
// base must be an absolute http(s) URL; a missing trailing slash is added.
func RebaseRunbooks(rules []byte, base string) ([]byte, int, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("runbook base %q is not an absolute http(s) URL", base)
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	n := 0
	out := runbookLine.ReplaceAllFunc(rules, func(line []byte) []byte {
		n++
		m := runbookLine.FindSubmatch(line)
		return bytes.Join([][]byte{m[1], []byte(base), m[2]}, nil)
	})
	return out, n, nil
}
