package selector

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type mapAttrs map[string]string

func (m mapAttrs) Get(k string) (string, bool) {
	v, ok := m[k]
	return v, ok
}

func attrs(kv map[string]string) Attributes { return mapAttrs(kv) }

type constAttrs string

func (c constAttrs) Get(string) (string, bool) { return string(c), true }

func TestParseAndMatch(t *testing.T) {
	tests := []struct {
		in      string
		metric  string
		match   map[string]string
		noMatch map[string]string
	}{
		{in: "controlloop.cycles", metric: "controlloop.cycles", match: map[string]string{"loop": "x"}},
		{
			in: `controlloop.cycles{loop="oven"}`, metric: "controlloop.cycles",
			match: map[string]string{"loop": "oven", "outcome": "ok"}, noMatch: map[string]string{"loop": "mixer"},
		},
		{
			in: ` controlloop.cycles { loop = "oven" , outcome=~"overrun|skipped" } `, metric: "controlloop.cycles",
			match: map[string]string{"loop": "oven", "outcome": "skipped"}, noMatch: map[string]string{"loop": "oven", "outcome": "overrun2"},
		},
		{
			in: `traces.span.metrics.calls{status.code="STATUS_CODE_ERROR",span.kind!="SPAN_KIND_CLIENT"}`, metric: "traces.span.metrics.calls",
			match: map[string]string{"status.code": "STATUS_CODE_ERROR"}, noMatch: map[string]string{"status.code": "STATUS_CODE_ERROR", "span.kind": "SPAN_KIND_CLIENT"},
		},
		{in: `m{a!~"x.*"}`, metric: "m", match: map[string]string{"a": "yx"}, noMatch: map[string]string{"a": "xy"}},
		{in: `m{a=""}`, metric: "m", match: map[string]string{"b": "1"}, noMatch: map[string]string{"a": "1"}},
		{in: `m{a='it\'s "q"'}`, metric: "m", match: map[string]string{"a": `it's "q"`}, noMatch: map[string]string{"a": "its"}},
		{in: `m{a="tab\there",}`, metric: "m", match: map[string]string{"a": "tab\there"}, noMatch: map[string]string{"a": `tab\there`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := Parse(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.metric, s.Metric)
			assert.True(t, s.Matches(attrs(tt.match)))
			if tt.noMatch != nil {
				assert.False(t, s.Matches(attrs(tt.noMatch)))
			}
			again, err := Parse(s.String())
			require.NoError(t, err, "String() must parse back")
			assert.Equal(t, s.String(), again.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]string{
		"":               "must start with a metric name",
		`{a="b"}`:        "must start with a metric name",
		`m{a="b"`:        "expected ',' or '}'",
		`m{a=b}`:         "expected a quoted string",
		`m{a<"b"}`:       "expected one of = != =~ !~",
		`m{a=~"("}`:      "regular expression of \"a\"",
		`m{a="b"} extra`: "unexpected text",
		`m x`:            "expected '{'",
		`m{a="b}`:        "unterminated string",
		`m{="b"}`:        "expected an attribute name",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
}

// FuzzParse checks that no input panics and that what parses prints back to an equal selector.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`m`, `controlloop.cycles{loop="oven",outcome=~"overrun|skipped"}`, `m{a!~'x\'y'}`, `m{a="\u00e9\n"}`, `m{`, `m{a=~"[["}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		again, err := Parse(s.String())
		require.NoError(t, err, "String() of %q = %q must parse", in, s.String())
		require.Equal(t, s.String(), again.String())
		s.Matches(constAttrs(in))
	})
}
