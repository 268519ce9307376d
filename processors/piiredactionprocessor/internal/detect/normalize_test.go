package detect

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestUnicodeDigitsAndSeparators: numbers written with no-break spaces, narrow no-break
// spaces, en dashes, minus signs or fullwidth and other scripts' digits are found, and the
// match covers exactly the original runes.
func TestUnicodeDigitsAndSeparators(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind Kind
	}{
		{"4111\u00a01111\u00a01111\u00a01111", CreditCard},
		{"4111\u202f1111\u202f1111\u202f1111", CreditCard},
		{"4111\u20131111\u20131111\u20131111", CreditCard},
		{"\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11", CreditCard},
		{"+44\u00a020\u00a07946\u00a00958", Phone},
		{"\uff0b\uff14\uff14 20 7946 0958", Phone},
		{"(555)\u00a0123\u20134567", Phone},
		{"202\u2011555\u20110143", Phone},
		{"078\u201305\u20131120", SSN},
		{"078\u221205\u22121120", SSN},
		{"\u0660\u0667\u0668-\u0660\u0665-\u0661\u0661\u0662\u0660", SSN}, // Arabic-Indic digits
		{"192.168.\uff11.\uff12", IPv4},
	} {
		for _, ctx := range []string{"%s", "x %s y", "名前 %s です", "v=%s;"} {
			s := fmtCtx(ctx, tc.in)
			assert.Equal(t, []string{tc.in}, found(s, tc.kind), "%q", s)
		}
	}
}

func TestFoldKeepsOtherText(t *testing.T) {
	s := "café 東京 naïve — ok"
	f, ok := fold(s)
	assert.True(t, ok) // the em dash and the narrow spaces around it fold
	assert.Equal(t, "café 東京 naïve - ok", f.s)
	assert.Len(t, f.off, len(f.s)+1)
	_, ok = fold("café 東京 naïve")
	assert.False(t, ok)
	assert.Equal(t, "4111 1111", FoldDigits("４１１１\u00a0１１１１"))
	assert.Empty(t, Scan(strings.Repeat("東京", 100), All, nil))
}

func TestCanonicalFoldsDigits(t *testing.T) {
	assert.Equal(t, "+442079460958", string(Canonical(nil, Phone, "＋44\u00a020\u00a07946\u00a00958")))
	assert.Equal(t, "4111111111111111", string(Canonical(nil, CreditCard, "４１１１-1111-1111-1111")))
}
