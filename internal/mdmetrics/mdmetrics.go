// Package mdmetrics reads the metrics that the components' mdatagen metadata.yaml files
// declare, under the names the components emit them. The telemetry contract
// (alerts/contract) is generated from it, and the components' tests check what they emit
// against it. It also reads pipeline_metrics.yaml, the same schema for pipeline metrics of a
// processor, which mdatagen v0.159 cannot generate code for (see
// processors/sloburnprocessor/pipeline_metrics.yaml).
package mdmetrics // import "github.com/fieldcol/fieldcol/internal/mdmetrics"

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind is the instrument kind of a metric, as Prometheus types it.
type Kind string

// The kinds mdatagen declares: a sum is a counter when monotonic, else an up-down counter.
const (
	Counter       Kind = "counter"
	UpDownCounter Kind = "updowncounter"
	Gauge         Kind = "gauge"
	Histogram     Kind = "histogram"
)

// Metric is one declared metric.
type Metric struct {
	// Name is the name the component emits: the key of `metrics:`, or the prefix and key
	// of `telemetry.metrics:` (mdatagen's default prefix otelcol_ when none is given).
	Name        string
	Unit        string
	Kind        Kind
	Description string
	// Attributes are the attribute names a data point may carry, in declared order.
	Attributes []string
	// Component is the metadata.yaml's type (hardware, sloburn, controlloop ...).
	Component string
	// Telemetry is true for a metric of `telemetry.metrics:` (recorded through a
	// MeterProvider), false for one of `metrics:` (built as pdata).
	Telemetry bool
}

// FileNames are the names of the files LoadTree reads.
var FileNames = []string{"metadata.yaml", "pipeline_metrics.yaml"}

type file struct {
	Type       string               `yaml:"type"`
	Attributes map[string]struct{}  `yaml:"attributes"`
	Metrics    map[string]metricDef `yaml:"metrics"`
	Telemetry  struct {
		Metrics map[string]metricDef `yaml:"metrics"`
	} `yaml:"telemetry"`
}

type metricDef struct {
	Prefix      string   `yaml:"prefix"`
	Description string   `yaml:"description"`
	Unit        *string  `yaml:"unit"`
	Attributes  []string `yaml:"attributes"`
	Sum         *struct {
		Monotonic bool `yaml:"monotonic"`
	} `yaml:"sum"`
	Gauge     *struct{} `yaml:"gauge"`
	Histogram *struct{} `yaml:"histogram"`
}

// defaultPrefix is what mdatagen puts before a telemetry metric that names no prefix.
const defaultPrefix = "otelcol_"

// Load reads the metrics declared in one metadata.yaml (or pipeline_metrics.yaml), sorted by
// name. A metric's attributes must be declared in the file's attributes section, as
// mdatagen requires.
func Load(path string) ([]Metric, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f file
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	var out []Metric
	for _, defs := range []map[string]metricDef{f.Metrics, f.Telemetry.Metrics} {
		for key, d := range defs {
			for _, a := range d.Attributes {
				if _, ok := f.Attributes[a]; !ok {
					return nil, fmt.Errorf("%s: metric %s: attribute %s is not declared under attributes", path, key, a)
				}
			}
		}
	}
	for key, d := range f.Metrics {
		// mdatagen's "name@version" keys emit the name before the @.
		name, _, _ := strings.Cut(key, "@")
		m, err := d.metric(name, f.Type, false)
		if err != nil {
			return nil, fmt.Errorf("%s: metric %s: %w", path, key, err)
		}
		out = append(out, m)
	}
	for key, d := range f.Telemetry.Metrics {
		prefix := d.Prefix
		if prefix == "" {
			prefix = defaultPrefix
		}
		m, err := d.metric(prefix+key, f.Type, true)
		if err != nil {
			return nil, fmt.Errorf("%s: telemetry metric %s: %w", path, key, err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d metricDef) metric(name, component string, telemetry bool) (Metric, error) {
	m := Metric{Name: name, Description: d.Description, Attributes: d.Attributes, Component: component, Telemetry: telemetry}
	if d.Unit == nil {
		return m, errors.New("no unit (mdatagen requires one, \"\" for none)")
	}
	m.Unit = *d.Unit
	switch {
	case d.Sum != nil && d.Sum.Monotonic:
		m.Kind = Counter
	case d.Sum != nil:
		m.Kind = UpDownCounter
	case d.Gauge != nil:
		m.Kind = Gauge
	case d.Histogram != nil:
		m.Kind = Histogram
	default:
		return m, errors.New("neither sum, gauge nor histogram")
	}
	return m, nil
}

// LoadTree reads every metadata.yaml and pipeline_metrics.yaml under root, sorted by name. It skips the directories
// the go command skips (names starting with "." or "_", testdata) and node_modules. Two
// files that declare the same name are an error: a name has one owner.
func LoadTree(root string) ([]Metric, error) {
	var out []Metric
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if path != root && (strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !slices.Contains(FileNames, d.Name()) {
			return nil
		}
		ms, err := Load(path)
		if err != nil {
			return err
		}
		out = append(out, ms...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := 1; i < len(out); i++ {
		if out[i].Name == out[i-1].Name {
			return nil, fmt.Errorf("metric %s is declared by both %s and %s", out[i].Name, out[i-1].Component, out[i].Component)
		}
	}
	return out, nil
}
