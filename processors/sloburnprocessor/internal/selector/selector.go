// Package selector parses and evaluates the metric stream selectors of an SLO: a metric name
// followed by optional attribute matchers in PromQL's syntax, e.g.
// controlloop.cycles{loop="oven",outcome=~"overrun|skipped"}. PromQL's syntax was chosen
// because the operators who write these SLOs already write it in their alert rules; the names
// are OTel names (dots allowed) because the processor sees the data before Prometheus does.
package selector

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Op is the comparison of one matcher.
type Op int

// The four PromQL matcher operators.
const (
	Equal Op = iota
	NotEqual
	RegexMatch
	RegexNoMatch
)

var opText = map[Op]string{Equal: "=", NotEqual: "!=", RegexMatch: "=~", RegexNoMatch: "!~"}

func (o Op) String() string { return opText[o] }

// Matcher compares one attribute with a value or an anchored regular expression.
type Matcher struct {
	Key   string
	Op    Op
	Value string
	re    *regexp.Regexp
}

// Selector picks the data points of one metric whose attributes satisfy every matcher.
type Selector struct {
	Metric   string
	Matchers []Matcher
}

// Attributes is where matchers read attribute values. An interface rather than a func so
// that the processor's hot path can pass a reusable value without allocating a closure.
type Attributes interface {
	// Get returns the value of an attribute and whether it is present.
	Get(key string) (string, bool)
}

// Matches reports whether every matcher holds. As in PromQL an absent attribute reads as the
// empty string, so key="" matches points without key.
func (s *Selector) Matches(attrs Attributes) bool {
	for i := range s.Matchers {
		m := &s.Matchers[i]
		v, _ := attrs.Get(m.Key)
		var ok bool
		switch m.Op {
		case Equal:
			ok = v == m.Value
		case NotEqual:
			ok = v != m.Value
		case RegexMatch:
			ok = m.re.MatchString(v)
		case RegexNoMatch:
			ok = !m.re.MatchString(v)
		}
		if !ok {
			return false
		}
	}
	return true
}

// String prints the selector in the syntax Parse reads.
func (s *Selector) String() string {
	if len(s.Matchers) == 0 {
		return s.Metric
	}
	parts := make([]string, len(s.Matchers))
	for i, m := range s.Matchers {
		parts[i] = m.Key + m.Op.String() + strconv.Quote(m.Value)
	}
	return s.Metric + "{" + strings.Join(parts, ",") + "}"
}

// Parse reads name{key="value",key!="value",key=~"regex",key!~"regex"}.
func Parse(text string) (*Selector, error) {
	p := parser{in: strings.TrimSpace(text)}
	s, err := p.selector()
	if err != nil {
		return nil, fmt.Errorf("selector %q: %w", text, err)
	}
	return s, nil
}

type parser struct {
	in  string
	pos int
}

func (p *parser) selector() (*Selector, error) {
	name := p.name()
	if name == "" {
		return nil, errors.New("must start with a metric name")
	}
	s := &Selector{Metric: name}
	p.space()
	if p.pos == len(p.in) {
		return s, nil
	}
	if p.in[p.pos] != '{' {
		return nil, fmt.Errorf("unexpected %q at offset %d, expected '{'", p.in[p.pos], p.pos)
	}
	p.pos++
	for {
		p.space()
		if p.peek('}') {
			p.pos++
			break
		}
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		s.Matchers = append(s.Matchers, m)
		p.space()
		if p.peek(',') {
			p.pos++
			continue
		}
		if p.peek('}') {
			p.pos++
			break
		}
		return nil, fmt.Errorf("expected ',' or '}' at offset %d", p.pos)
	}
	p.space()
	if p.pos != len(p.in) {
		return nil, fmt.Errorf("unexpected text %q after '}'", p.in[p.pos:])
	}
	return s, nil
}

func (p *parser) matcher() (Matcher, error) {
	key := p.name()
	if key == "" {
		return Matcher{}, fmt.Errorf("expected an attribute name at offset %d", p.pos)
	}
	p.space()
	var op Op
	switch {
	case strings.HasPrefix(p.in[p.pos:], "=~"):
		op = RegexMatch
	case strings.HasPrefix(p.in[p.pos:], "!~"):
		op = RegexNoMatch
	case strings.HasPrefix(p.in[p.pos:], "!="):
		op = NotEqual
	case strings.HasPrefix(p.in[p.pos:], "="):
		op = Equal
	default:
		return Matcher{}, fmt.Errorf("expected one of = != =~ !~ after %q", key)
	}
	p.pos += len(op.String())
	p.space()
	value, err := p.quoted()
	if err != nil {
		return Matcher{}, fmt.Errorf("value of %q: %w", key, err)
	}
	m := Matcher{Key: key, Op: op, Value: value}
	if op == RegexMatch || op == RegexNoMatch {
		// Anchored like PromQL: the expression must match the whole value.
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("regular expression of %q: %w", key, err)
		}
		m.re = re
	}
	return m, nil
}

// name reads an OTel metric or attribute name: letters, digits, '_', '.', '-' and '/'.
func (p *parser) name() string {
	start := p.pos
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '_' || c == '.' || c == '-' || c == '/' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.in[start:p.pos]
}

func (p *parser) quoted() (string, error) {
	if p.pos >= len(p.in) || (p.in[p.pos] != '"' && p.in[p.pos] != '\'') {
		return "", errors.New("expected a quoted string")
	}
	quote := p.in[p.pos]
	for end := p.pos + 1; end < len(p.in); end++ {
		switch p.in[end] {
		case '\\':
			end++
		case quote:
			raw := p.in[p.pos : end+1]
			if quote == '\'' {
				raw = `"` + strings.ReplaceAll(strings.ReplaceAll(raw[1:len(raw)-1], `\'`, `'`), `"`, `\"`) + `"`
			}
			v, err := strconv.Unquote(raw)
			if err != nil {
				return "", fmt.Errorf("invalid escape in %s", p.in[p.pos:end+1])
			}
			p.pos = end + 1
			return v, nil
		}
	}
	return "", errors.New("unterminated string")
}

func (p *parser) peek(c byte) bool { return p.pos < len(p.in) && p.in[p.pos] == c }

func (p *parser) space() {
	for p.pos < len(p.in) && (p.in[p.pos] == ' ' || p.in[p.pos] == '\t' || p.in[p.pos] == '\n') {
		p.pos++
	}
}
