package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// PanelQuery is one Prometheus target of one panel of a committed dashboard.
type PanelQuery struct {
	Dashboard, Panel, RefID, Expr string
}

var registerOnce sync.Once

// Decode reads a dashboard JSON file into the SDK's types, as strictly as the SDK allows.
// Its UnmarshalJSONStrict is unusable in v0.0.22: every nested decoder returns an empty
// error list as a non-nil error, so a valid panel is dropped. Decode therefore decodes
// normally and requires the result to encode back to the same JSON: a field the SDK does
// not know is lost on the way and fails, a mistyped one fails to decode.
func Decode(path string) (*dashboard.Dashboard, error) { //nolint:staticcheck // the classic model, see builder
	// Panel options and targets decode into their plugin's types only once the SDK's
	// plugin registry knows them.
	registerOnce.Do(plugins.RegisterDefaultPlugins)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d dashboard.Dashboard //nolint:staticcheck // the classic model, see builder
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	again, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encoding %s again: %w", path, err)
	}
	var before, after any
	if err := json.Unmarshal(raw, &before); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	if err := json.Unmarshal(again, &after); err != nil {
		return nil, fmt.Errorf("decoding %s again: %w", path, err)
	}
	if diff := firstDiff("", before, after); diff != "" {
		return nil, fmt.Errorf("%s does not survive a round trip through the SDK's types: %s", path, diff)
	}
	return &d, nil
}

// firstDiff names the first place where two decoded JSON values differ, or returns "".
func firstDiff(path string, a, b any) string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return path + ": object became " + fmt.Sprintf("%T", b)
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			x, inA := av[k]
			y, inB := bv[k]
			switch {
			case !inB:
				return path + "." + k + ": lost"
			case !inA:
				return path + "." + k + ": added"
			}
			if d := firstDiff(path+"."+k, x, y); d != "" {
				return d
			}
		}
		return ""
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return path + ": array changed"
		}
		for i := range av {
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i]); d != "" {
				return d
			}
		}
		return ""
	default:
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Sprintf("%s: %v became %v", path, a, b)
		}
		return ""
	}
}

// Queries returns every panel target of the dashboards committed in dir (json/), in file
// and panel order.
func Queries(dir string) ([]PanelQuery, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []PanelQuery
	for _, f := range files {
		d, err := Decode(f)
		if err != nil {
			return nil, err
		}
		for _, p := range d.Panels {
			if p.Panel == nil {
				continue
			}
			for _, t := range p.Panel.Targets {
				pq, ok := t.(*prometheus.Dataquery)
				if !ok {
					return nil, fmt.Errorf("%s: panel %q has a target of type %T, not a Prometheus query", f, deref(p.Panel.Title), t)
				}
				out = append(out, PanelQuery{Dashboard: deref(d.Title), Panel: deref(p.Panel.Title), RefID: deref(pq.RefId), Expr: pq.Expr})
			}
		}
	}
	return out, nil
}

// Expand replaces Grafana's template variables in expr as Grafana would for the given
// values ($name and ${name}); $__rate_interval becomes rateInterval.
func Expand(expr string, vars map[string]string, rateInterval string) string {
	expr = strings.ReplaceAll(expr, "$__rate_interval", rateInterval)
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	// Longest first, so $device_id is not taken for $device followed by _id.
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, n := range names {
		expr = strings.ReplaceAll(expr, "${"+n+"}", vars[n])
		expr = strings.ReplaceAll(expr, "$"+n, vars[n])
	}
	return expr
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
