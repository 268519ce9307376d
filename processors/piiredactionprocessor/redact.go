package piiredactionprocessor // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor"

import (
	"context"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/detect"
)

// summaryAttribute lists per record which rules fired and how often, when summary is on.
const summaryAttribute = "piiredaction.summary"

// walker carries the scratch space of one ConsumeX call; walkers are pooled so that a batch
// without personal data allocates nothing.
type walker struct {
	rs      *ruleSet
	set     detect.Set // detectors for the value at hand (IPv4 is off under version keys)
	matches []detect.Match
	out     []byte
	canon   []byte
	sum     []byte
	mac     hash.Hash
	counts  map[countKey]int64 // flushed to telemetry after each batch
	run     countKey           // the series of the current run of counts, runN of them
	runN    int64
	key     string  // where the value at hand sits, for the audit counter
	rec     []int32 // per rule, for the summary of the current record
	recHit  bool
	drop    bool // the current record must be dropped
	depth   int  // nesting of the map at hand: allow-lists apply to top-level attributes only
	// underResource are the scoped allow rules that select the current resource and signal;
	// active those that also select the current scope.
	underResource []int
	active        []int
}

// resource starts a resource of signal sig: it picks the scoped allow rules that select it,
// before its attributes are redacted.
func (w *walker) resource(sig signal, attrs pcommon.Map) {
	w.underResource = w.underResource[:0]
	for i := range w.rs.scoped {
		if w.rs.scoped[i].selectsResource(sig, attrs) {
			w.underResource = append(w.underResource, i)
		}
	}
	w.active = w.active[:0]
	for _, i := range w.underResource {
		if w.rs.scoped[i].scopes == nil {
			w.active = append(w.active, i)
		}
	}
}

// scope narrows the rules of the current resource to those that select the scope name.
func (w *walker) scope(name string) {
	w.active = w.active[:0]
	for _, i := range w.underResource {
		if w.rs.scoped[i].selectsScope(name) {
			w.active = append(w.active, i)
		}
	}
}

// allowed reports whether a top-level key is exempt here.
func (w *walker) allowed(k string) bool {
	if w.depth > 0 {
		return false
	}
	if _, ok := w.rs.allow[k]; ok {
		return true
	}
	for _, i := range w.active {
		if _, ok := w.rs.scoped[i].keys[k]; ok {
			return true
		}
	}
	return false
}

func newWalker(rs *ruleSet) *walker {
	return &walker{
		rs:      rs,
		set:     rs.scan,
		matches: make([]detect.Match, 0, 8),
		counts:  map[countKey]int64{},
		rec:     make([]int32, len(rs.rules)),
	}
}

func (w *walker) count(r int, a Action) {
	// Matches come in runs of one rule under one key (a body full of card numbers): the run
	// is counted here and added to the map once, not hashed per match.
	k := countKey{rule: r, action: a.index(), key: w.key}
	if w.runN > 0 && k == w.run {
		w.runN++
	} else {
		w.endRun()
		w.run, w.runN = k, 1
	}
	if w.rs.summary {
		w.rec[r]++
		w.recHit = true
	}
}

func (w *walker) endRun() {
	if w.runN > 0 {
		w.counts[w.run] += w.runN
		w.runN = 0
	}
}

// beginRecord starts a span, log record, data point, scope or resource.
func (w *walker) beginRecord() {
	w.drop = false
	if w.recHit {
		clear(w.rec)
		w.recHit = false
	}
}

// endRecord writes the summary attribute of the record, if asked for.
func (w *walker) endRecord(attrs pcommon.Map) {
	if !w.rs.summary || !w.recHit {
		return
	}
	var b strings.Builder
	for r, n := range w.rec {
		if n == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(w.rs.rules[r].name)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(int(n)))
	}
	attrs.PutStr(summaryAttribute, b.String())
}

// countKey is one series of the redactions counter within a signal.
type countKey struct {
	rule, action int
	key          string
}

// flush records the batch's counts and resets them.
func (w *walker) flush(ctx context.Context, p *piiProcessor, sig signal) {
	w.endRun()
	for k, n := range w.counts {
		p.telemetry.ProcessorPiiredactionRedactions.Add(ctx, n, w.rs.addOption(sig, k))
	}
	clear(w.counts)
}

// attrs redacts a map in place: allow-listed keys are skipped, keys owned by a rule have their
// whole value handled, everything else is scanned (maps and slices recursively).
func (w *walker) attrs(m pcommon.Map) {
	if m.Len() == 0 {
		return
	}
	parent := w.key
	defer func() { w.key = parent }()
	m.RemoveIf(func(k string, v pcommon.Value) bool {
		if w.drop {
			return false
		}
		w.key = k
		if k == summaryAttribute || w.allowed(k) {
			return false
		}
		if r, byName := w.rs.keyRule(k); r >= 0 && (!byName || w.fits(k, v, r)) {
			return w.whole(v, r)
		}
		if !detect.VersionKey(k) {
			return w.value(v)
		}
		// "app.version": "10.2.0.1" is a version, not an address.
		prev := w.set
		w.set = w.set.Without(detect.IPv4)
		remove := w.value(v)
		w.set = prev
		return remove
	})
}

// value redacts v and reports whether it must be removed from its container.
func (w *walker) value(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		out, verdict := w.text(v.Str())
		switch verdict {
		case verdictChanged:
			v.SetStr(out)
		case verdictRemove:
			return true
		}
	case pcommon.ValueTypeInt:
		// Card numbers stored as integers; smaller integers (counts, ids, timestamps) cannot be
		// any of the detected formats without separators or context, and are not formatted.
		if n := v.Int(); n >= 1e12 || n <= -1e12 {
			var buf [24]byte
			out, verdict := w.text(string(strconv.AppendInt(buf[:0], n, 10)))
			switch verdict {
			case verdictChanged:
				v.SetStr(out)
			case verdictRemove:
				return true
			}
		}
	case pcommon.ValueTypeMap:
		w.depth++
		w.attrs(v.Map())
		w.depth--
	case pcommon.ValueTypeSlice:
		w.depth++
		sl := v.Slice()
		sl.RemoveIf(func(e pcommon.Value) bool {
			return !w.drop && w.value(e)
		})
		w.depth--
	}
	return false
}

// fits reports whether v looks like what its key names (detect.ValueFitsKey); maps and slices
// are walked instead, so that their own keys decide.
func (w *walker) fits(key string, v pcommon.Value, r int) bool {
	kind := w.rs.rules[r].kind
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return detect.ValueFitsKey(key, kind, v.Str())
	case pcommon.ValueTypeInt:
		var buf [24]byte
		return detect.ValueFitsKey(key, kind, string(strconv.AppendInt(buf[:0], v.Int(), 10)))
	case pcommon.ValueTypeDouble:
		var buf [32]byte
		return detect.ValueFitsKey(key, kind, string(strconv.AppendFloat(buf[:0], v.Double(), 'g', -1, 64)))
	case pcommon.ValueTypeBool, pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		return false
	}
	return true
}

// whole applies rule r to the entire value of a key rule (resident_name, password, lat ...).
func (w *walker) whole(v pcommon.Value, r int) bool {
	ru := &w.rs.rules[r]
	if v.Type() == pcommon.ValueTypeEmpty {
		return false
	}
	switch ru.action {
	case ActionDropRecord:
		w.count(r, ru.action)
		w.drop = true
		return false
	case ActionDropAttribute:
		w.count(r, ru.action)
		return true
	}
	var s string
	if v.Type() == pcommon.ValueTypeStr {
		s = v.Str()
	} else {
		s = v.AsString()
	}
	if w.redacted(s) {
		return false
	}
	w.out = w.apply(w.out[:0], ru, s, ru.kind)
	w.count(r, ru.action)
	v.SetStr(string(w.out))
	return false
}

type verdict int

const (
	verdictKeep verdict = iota
	verdictChanged
	verdictRemove
)

// text scans a string; the returned string is valid only when the verdict is verdictChanged.
func (w *walker) text(s string) (string, verdict) {
	rs := w.rs
	ms := detect.Scan(s, w.set, w.matches[:0])
	if len(rs.patterns) > 0 {
		n := len(ms)
		for _, p := range rs.patterns {
			for _, loc := range p.re.FindAllStringIndex(s, -1) {
				if loc[1] > loc[0] {
					ms = append(ms, detect.Match{Start: loc[0], End: loc[1], Kind: detect.NumKinds, Rule: p.rule})
				}
			}
		}
		if len(ms) > n {
			ms = detect.Normalize(ms, 0)
		}
	}
	w.matches = ms
	if len(ms) == 0 {
		return s, verdictKeep
	}
	// The strongest action among the matches decides for the value.
	strongest := ActionMask
	for _, m := range ms {
		a := rs.rules[w.ruleOf(m)].action
		if a == ActionDropRecord || (a == ActionDropAttribute && strongest != ActionDropRecord) {
			strongest = a
		}
	}
	switch strongest {
	case ActionDropRecord, ActionDropAttribute:
		for _, m := range ms {
			if r := w.ruleOf(m); rs.rules[r].action == strongest {
				w.count(r, strongest)
				break
			}
		}
		if strongest == ActionDropRecord {
			w.drop = true
			return s, verdictKeep
		}
		return s, verdictRemove
	}
	out := slices.Grow(w.out[:0], len(s)) // the output is about as long as the input
	last := 0
	for _, m := range ms {
		r := w.ruleOf(m)
		ru := &rs.rules[r]
		out = append(out, s[last:m.Start]...)
		out = w.apply(out, ru, s[m.Start:m.End], m.Kind)
		w.count(r, ru.action)
		last = m.End
	}
	out = append(out, s[last:]...)
	w.out = out
	return string(out), verdictChanged
}

func (w *walker) ruleOf(m detect.Match) int {
	if m.Rule >= 0 {
		return m.Rule
	}
	return w.rs.kindRule[m.Kind]
}

// apply appends the replacement of v under rule ru to dst.
func (w *walker) apply(dst []byte, ru *rule, v string, kind detect.Kind) []byte {
	if ru.action == ActionHash {
		return w.pseudonym(dst, kind, v)
	}
	kf, kl := ru.keepFirst, ru.keepLast
	if kf+kl >= utf8.RuneCountInString(v) {
		return append(dst, w.rs.mask...)
	}
	if kf > 0 {
		dst = append(dst, v[:runeOffset(v, kf)]...)
	}
	dst = append(dst, w.rs.mask...)
	if kl > 0 {
		dst = append(dst, v[len(v)-runeOffsetFromEnd(v, kl):]...)
	}
	return dst
}

// pseudonym appends hash_prefix + hex(HMAC-SHA256(key, canonical value)) truncated to
// hash_length, so one person gets one joinable token in every signal and on every device.
func (w *walker) pseudonym(dst []byte, kind detect.Kind, v string) []byte {
	if w.mac == nil {
		w.mac = w.rs.macs.Get().(hash.Hash)
	}
	w.canon = detect.Canonical(w.canon[:0], kind, v)
	w.mac.Reset()
	w.mac.Write(w.canon)
	w.sum = w.mac.Sum(w.sum[:0])
	dst = append(dst, w.rs.hashPrefix...)
	n := w.rs.hashLength
	var hx [64]byte
	hex.Encode(hx[:], w.sum)
	return append(dst, hx[:n]...)
}

// redacted reports whether a whole value is already a mask or a pseudonym, so that a second
// piiredaction (edge, then gateway) leaves it alone and pseudonyms stay joinable.
func (w *walker) redacted(s string) bool {
	if s == w.rs.mask {
		return true
	}
	p := w.rs.hashPrefix
	if len(s) != len(p)+w.rs.hashLength || !strings.HasPrefix(s, p) {
		return false
	}
	for i := len(p); i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (w *walker) release() {
	if w.mac != nil {
		w.rs.macs.Put(w.mac)
		w.mac = nil
	}
	// A pooled walker does not keep the buffers of a huge body alive (memory on a Pi).
	if cap(w.out) > maxPooledBuffer {
		w.out = nil
	}
	if cap(w.matches)*int(unsafe.Sizeof(detect.Match{})) > maxPooledBuffer {
		w.matches = make([]detect.Match, 0, 8)
	}
}

// maxPooledBuffer is the largest scratch buffer a pooled walker keeps.
const maxPooledBuffer = 64 << 10

func runeOffset(s string, n int) int {
	off := 0
	for i := 0; i < n && off < len(s); i++ {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}

func runeOffsetFromEnd(s string, n int) int {
	off := 0
	for i := 0; i < n && off < len(s); i++ {
		_, size := utf8.DecodeLastRuneInString(s[:len(s)-off])
		off += size
	}
	return off
}
