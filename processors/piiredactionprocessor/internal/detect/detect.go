// Package detect finds personal data and secrets in strings with hand-written scanners.
//
// Every detector is a single forward pass guided by cheap triggers (a digit at a word start,
// an '@', a ':' or an '='), so a string without any trigger costs one byte loop and no
// allocation. Matches are reported as byte ranges; the caller decides what to do with them and
// must never log the matched text.
package detect // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor/internal/detect"

import (
	"cmp"
	"slices"
)

// Kind identifies a built-in detector.
type Kind uint8

// The built-in detectors. The order is the priority used when two matches start at the same
// byte and have the same length.
const (
	Email Kind = iota
	Phone
	IPv4
	IPv6
	CreditCard
	IBAN
	SSN
	JWT
	BearerToken
	Credentials
	Geo
	Person
	NumKinds
)

var kindNames = [NumKinds]string{
	Email:       "email",
	Phone:       "phone",
	IPv4:        "ipv4",
	IPv6:        "ipv6",
	CreditCard:  "credit_card",
	IBAN:        "iban",
	SSN:         "us_ssn",
	JWT:         "jwt",
	BearerToken: "bearer_token",
	Credentials: "credentials",
	Geo:         "geo",
	Person:      "person",
}

// String returns the configuration name of the detector.
func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Set is a set of detectors.
type Set uint16

// Has reports whether k is in the set.
func (s Set) Has(k Kind) bool { return s&(1<<k) != 0 }

// With returns the set plus k.
func (s Set) With(k Kind) Set { return s | 1<<k }

// Without returns the set minus k.
func (s Set) Without(k Kind) Set { return s &^ (1 << k) }

// All is the set of every detector.
const All Set = 1<<NumKinds - 1

// Match is a detected range s[Start:End] and the detector that found it. Rule is free for the
// caller (custom patterns use it); built-in detectors leave it at -1.
type Match struct {
	Start, End int
	Kind       Kind
	Rule       int
}

// Scan appends to dst the matches of the detectors in set found in s, sorted by Start and
// without overlaps (overlapping matches are merged into the earliest one). It does not
// allocate unless dst must grow.
//
// Digits and separators written with other Unicode characters (fullwidth digits, no-break
// spaces, en dashes ...) are folded to ASCII first, and the matches mapped back onto the
// original text.
func Scan(s string, set Set, dst []Match) []Match {
	base := len(dst)
	if len(s) == 0 || set == 0 {
		return dst
	}
	if f, ok := fold(s); ok {
		dst = scan(f.s, set, dst)
		for i := base; i < len(dst); i++ {
			dst[i].Start, dst[i].End = int(f.off[dst[i].Start]), int(f.off[dst[i].End])
		}
		return dst
	}
	return scan(s, set, dst)
}

func scan(s string, set Set, dst []Match) []Match {
	base := len(dst)
	if set&(1<<Phone|1<<IPv4|1<<CreditCard|1<<SSN|1<<IBAN|1<<JWT|1<<BearerToken) != 0 {
		dst = scanWords(s, set, dst)
	}
	if set.Has(Email) {
		dst = scanEmails(s, dst)
	}
	if set.Has(IPv6) {
		dst = scanIPv6(s, dst)
	}
	if set.Has(Credentials) || set.Has(Geo) || set.Has(Person) {
		dst = scanKeyValues(s, set, dst)
	}
	return Normalize(dst, base)
}

// Normalize sorts dst[base:] by start and merges overlapping matches, keeping the kind of the
// match that starts first (or, at the same start, the longer one).
func Normalize(dst []Match, base int) []Match {
	m := dst[base:]
	if len(m) < 2 {
		return dst
	}
	// Each scanner reports in order, but their lists are concatenated: a real sort keeps this
	// O(m log m) however many matches a string holds (insertion sort was quadratic on a body
	// of alternating cards and e-mail addresses). slices.SortFunc does not allocate.
	slices.SortFunc(m, compare)
	out := 0
	for i := 1; i < len(m); i++ {
		if m[i].Start < m[out].End {
			if m[i].End > m[out].End {
				m[out].End = m[i].End
			}
			continue
		}
		out++
		m[out] = m[i]
	}
	return dst[:base+out+1]
}

func compare(a, b Match) int {
	switch {
	case a.Start != b.Start:
		return cmp.Compare(a.Start, b.Start)
	case a.End != b.End:
		return cmp.Compare(b.End, a.End)
	}
	return cmp.Compare(a.Kind, b.Kind)
}

func add(dst []Match, start, end int, k Kind) []Match {
	return append(dst, Match{Start: start, End: end, Kind: k, Rule: -1})
}

// equalFoldASCII compares an ASCII-lowercase word with s, ignoring the case of s.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if toLower(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func hasSuffixFold(s, lower string) bool {
	return len(s) >= len(lower) && equalFoldASCII(s[len(s)-len(lower):], lower)
}

func hasPrefixFold(s, lower string) bool {
	return len(s) >= len(lower) && equalFoldASCII(s[:len(lower)], lower)
}

// containsFold reports whether s contains the ASCII-lowercase word lower, ignoring case.
func containsFold(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
}
