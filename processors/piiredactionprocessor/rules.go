package piiredactionprocessor // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor"

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/detect"
)

// rule is one compiled detector, key rule or pattern.
type rule struct {
	// keepFirst and keepLast are zero unless the action is mask.
	name      string
	action    Action
	keepFirst int
	keepLast  int
	kind      detect.Kind // detect.NumKinds for key rules and patterns
}

type pattern struct {
	re   *regexp.Regexp
	rule int
}

// ruleSet is the compiled configuration, shared read-only by all goroutines.
type ruleSet struct {
	rules    []rule
	scan     detect.Set           // detectors run on string values
	kindRule [detect.NumKinds]int // rule of each detector, -1 when off
	keys     map[string]int       // lower-cased key name -> rule
	patterns []pattern
	allow    map[string]struct{} // allow_keys: in every record
	scoped   []allowRule
	keyKinds bool // a detector is on, so keys that name its kind (user.email, lat) are classified too

	mask       string
	hashPrefix string
	hashLength int
	summary    bool
	macs       sync.Pool // hash.Hash (HMAC-SHA256 keyed once)

	// audit caches the attribute set of each series of the redactions counter (signal, rule,
	// action, key), so recording allocates only for a series' first batch.
	audit       sync.Map // auditKey -> metric.AddOption
	auditSeries atomic.Int64
}

type signal int

const (
	signalTraces signal = iota
	signalMetrics
	signalLogs
	numSignals
)

var signalNames = [numSignals]string{"traces", "metrics", "logs"}

func signalIndex(name string) signal {
	for i, n := range signalNames {
		if n == name {
			return signal(i)
		}
	}
	return -1
}

// allowRule is a compiled AllowRule.
type allowRule struct {
	keys     map[string]struct{}
	scopes   map[string]struct{} // nil: any scope
	resource map[string]string
	signals  [numSignals]bool
}

// selectsResource reports whether the rule can apply under a resource of signal sig.
func (a *allowRule) selectsResource(sig signal, res pcommon.Map) bool {
	if !a.signals[sig] {
		return false
	}
	for k, want := range a.resource {
		v, ok := res.Get(k)
		if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() != want {
			return false
		}
	}
	return true
}

func (a *allowRule) selectsScope(name string) bool {
	if a.scopes == nil {
		return true
	}
	_, ok := a.scopes[name]
	return ok
}

func compileRules(cfg *Config) (*ruleSet, error) {
	rs := &ruleSet{
		keys:       map[string]int{},
		allow:      map[string]struct{}{},
		mask:       cfg.Mask,
		hashPrefix: cfg.HashPrefix,
		hashLength: cfg.HashLength,
		summary:    cfg.Summary,
	}
	for k := range rs.kindRule {
		rs.kindRule[k] = -1
	}
	newRule := func(name string, a Action, keepFirst, keepLast int, kind detect.Kind) rule {
		if a != ActionMask {
			keepFirst, keepLast = 0, 0
		}
		return rule{name: name, action: a, keepFirst: keepFirst, keepLast: keepLast, kind: kind}
	}
	for i, d := range cfg.detectorList() {
		if !d.rc.Enabled {
			continue
		}
		kind := detect.Kind(i)
		rs.kindRule[kind] = len(rs.rules)
		rs.rules = append(rs.rules, newRule(d.name, d.rc.Action, d.rc.KeepFirst, d.rc.KeepLast, kind))
		rs.scan = rs.scan.With(kind)
		rs.keyKinds = true
	}
	for _, k := range cfg.Keys {
		idx := len(rs.rules)
		rs.rules = append(rs.rules, newRule(k.Name, k.Action, k.KeepFirst, k.KeepLast, detect.NumKinds))
		for _, key := range k.Keys {
			rs.keys[strings.ToLower(key)] = idx
		}
	}
	for _, p := range cfg.Patterns {
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return nil, fmt.Errorf("patterns %q::regex: %w", p.Name, err)
		}
		rs.patterns = append(rs.patterns, pattern{re: re, rule: len(rs.rules)})
		rs.rules = append(rs.rules, newRule(p.Name, p.Action, p.KeepFirst, p.KeepLast, detect.NumKinds))
	}
	for _, k := range cfg.AllowKeys {
		rs.allow[k] = struct{}{}
	}
	for _, a := range cfg.Allow {
		ar := allowRule{keys: map[string]struct{}{}, resource: a.ResourceAttributes}
		for _, k := range a.Keys {
			ar.keys[k] = struct{}{}
		}
		if len(a.Scopes) > 0 {
			ar.scopes = map[string]struct{}{}
			for _, sc := range a.Scopes {
				ar.scopes[sc] = struct{}{}
			}
		}
		for sig := range numSignals {
			ar.signals[sig] = len(a.Signals) == 0
		}
		for _, name := range a.Signals {
			if sig := signalIndex(name); sig >= 0 {
				ar.signals[sig] = true
			}
		}
		rs.scoped = append(rs.scoped, ar)
	}
	key := []byte(string(cfg.HMACKey))
	rs.macs.New = func() any { return hmac.New(sha256.New, key) }
	return rs, nil
}

type auditKey struct {
	sig signal
	countKey
}

// maxAuditSeries bounds the series of the redactions counter; keys of later series count as
// "other", so an application that puts ids in map keys cannot blow up the series count.
const maxAuditSeries = 1024

// addOption returns the attribute set of one series of the redactions counter. The key is
// reported as it is unless it holds personal data itself (then "redacted_key") or the
// counter already has maxAuditSeries series (then "other"): never a value.
func (rs *ruleSet) addOption(sig signal, k countKey) metric.AddOption {
	ak := auditKey{sig: sig, countKey: k}
	if o, ok := rs.audit.Load(ak); ok {
		return o.(metric.AddOption)
	}
	key := k.key
	switch {
	case len(detect.Scan(key, detect.All, nil)) > 0:
		key = "redacted_key"
	case rs.auditSeries.Load() >= maxAuditSeries:
		key = "other"
	}
	o := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("signal", signalNames[sig]),
		attribute.String("rule", rs.rules[k.rule].name),
		attribute.String("action", string(actions[k.action])),
		attribute.String("key", key),
	))
	if key != "other" {
		if _, loaded := rs.audit.LoadOrStore(ak, o); !loaded {
			rs.auditSeries.Add(1)
		}
	}
	return o
}

// keyRule returns the rule that owns a key's whole value, or -1, and whether the rule came from
// the key's name (user.email, session) rather than from a configured key rule. It lower-cases
// on the stack: it runs for every attribute of every record.
func (rs *ruleSet) keyRule(key string) (int, bool) {
	if len(rs.keys) > 0 {
		var buf [64]byte
		if len(key) <= len(buf) {
			b := buf[:len(key)]
			for i := 0; i < len(key); i++ {
				c := key[i]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[i] = c
			}
			if r, ok := rs.keys[string(b)]; ok {
				return r, false
			}
		} else if r, ok := rs.keys[strings.ToLower(key)]; ok {
			return r, false
		}
	}
	if rs.keyKinds {
		if kind, ok := detect.KeyKind(key); ok {
			return rs.kindRule[kind], true
		}
	}
	return -1, false
}
