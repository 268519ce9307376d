package detect

import (
	"unicode"
	"unicode/utf8"
)

// foldRune returns the ASCII character that the detectors should see for a non-ASCII rune
// people and software write inside numbers: any decimal digit (fullwidth, Arabic-Indic,
// Devanagari ...) as its ASCII digit, space separators (no-break space, narrow no-break space,
// figure and thin spaces, ideographic space) as ' ', dashes (hyphen, non-breaking hyphen, en
// and em dash, minus sign, fullwidth hyphen-minus) as '-', and the fullwidth forms of + ( ) . /
// @ : as themselves. It returns 0 for every other rune.
func foldRune(r rune) byte {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
		switch a := byte(r - 0xFF01 + '!'); a {
		case '+', '(', ')', '.', '/', '@', ':', '-':
			return a
		default:
			if isDigit(a) {
				return a
			}
		}
		return 0
	case r == 0x2212:
		return '-'
	case unicode.Is(unicode.Nd, r):
		return '0' + byte(digitValue(r))
	case unicode.Is(unicode.Zs, r):
		return ' '
	case unicode.Is(unicode.Pd, r):
		return '-'
	}
	return 0
}

// digitValue is the value of a decimal digit rune: Unicode puts each script's digits 0 to 9
// in a run of ten (several runs back to back for the mathematical digits).
func digitValue(r rune) int {
	start := r
	for start > 0 && r-start < 60 && unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return int(r-start) % 10
}

// folded holds a string with foldRune applied and, for each of its bytes, the offset of the
// byte of the original string it came from (off[len] is the original length), so that matches
// found in the folded text map back onto whole runes of the original.
type folded struct {
	s   string
	off []int32
}

// fold returns the folded form of s and true, or false when s has no rune to fold (the
// common case; it then costs one pass over the non-ASCII bytes and no allocation).
func fold(s string) (folded, bool) {
	first := -1
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if foldRune(r) != 0 {
			first = i
			break
		}
		i += size
	}
	if first < 0 {
		return folded{}, false
	}
	b := make([]byte, 0, len(s))
	off := make([]int32, 0, len(s)+1)
	b = append(b, s[:first]...)
	for i := 0; i < first; i++ {
		off = append(off, int32(i))
	}
	for i := first; i < len(s); {
		if s[i] < utf8.RuneSelf {
			b = append(b, s[i])
			off = append(off, int32(i))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if a := foldRune(r); a != 0 {
			b = append(b, a)
			off = append(off, int32(i))
		} else {
			for k := 0; k < size; k++ {
				b = append(b, s[i+k])
				off = append(off, int32(i+k))
			}
		}
		i += size
	}
	off = append(off, int32(len(s)))
	return folded{s: string(b), off: off}, true
}

// FoldDigits returns v with foldRune applied (for canonical forms), or v itself.
func FoldDigits(v string) string {
	if f, ok := fold(v); ok {
		return f.s
	}
	return v
}
