package detect

import "strings"

// ValueFitsKey reports whether v, the value of a key that KeyKind classified as k, looks like
// what the key names, so that the whole value is redacted: a "session" key holding a counter,
// a date or a state word is not a credential, while an opaque token under it is; "phone": 2
// and "lat": "n/a" carry no number. Password-like keys (password, secret, api_key ...) fit
// any non-empty value. A value that does not fit is still scanned by the detectors.
func ValueFitsKey(key string, k Kind, v string) bool {
	v = strings.TrimSpace(v)
	if v == "" || masked(v) {
		return false
	}
	switch k {
	case Credentials:
		if w, ok := keyWordOf(key); ok && !w.opaque {
			return true
		}
		return !plainValue(v)
	case Geo:
		return countDigits(v) > 0
	case Person:
		return hasLetter(v) && !plainWord(v)
	case Phone:
		return countDigits(v) >= 6
	case SSN:
		return countDigits(v) >= 4
	case CreditCard:
		return countDigits(v) >= 12
	case IBAN:
		return countDigits(v) >= 8
	}
	return !plainValue(v)
}

func countDigits(v string) int {
	v = FoldDigits(v)
	n := 0
	for i := 0; i < len(v); i++ {
		if isDigit(v[i]) {
			n++
		}
	}
	return n
}

// plainValue reports whether v is a value that names no one and opens nothing: a boolean or
// null word, a short number (a counter, an epoch), a date, time or duration, or one short
// word of letters (a state such as "expired").
func plainValue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "null", "nil", "none", "n/a", "na", "-", "unknown", "undefined", "<nil>":
		return true
	}
	letters, digits, other := 0, 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case isLetter(c):
			letters++
		case isDigit(c):
			digits++
		case strings.IndexByte("-+:./ ,TZ", c) >= 0:
			other++
		default:
			return false
		}
	}
	switch {
	case digits == 0:
		// A word or two of letters: a state ("expired", "not set"). Long runs of letters are
		// opaque enough to be tokens.
		return letters <= 12 && !strings.ContainsAny(v, "+/.:")
	case letters == 0:
		// A counter or an epoch (up to 13 digits: milliseconds), or a date or time
		// ("2025-12-17", "10:30:00", "17.12.2025 10:30").
		return digits <= 13 || other > 0 && dateLike(v)
	}
	return dateLike(v) || durationLike(v)
}

// dateLike reports an ISO 8601 or similar date-time: digits with - : . / T Z + and spaces,
// where the digits come in groups of at most four.
func dateLike(v string) bool {
	run, groups := 0, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isDigit(c) {
			run++
			if run > 4 && (i < run || v[i-run] != '.') { // fractions of a second run longer
				return false
			}
			continue
		}
		if run > 0 {
			groups++
		}
		run = 0
		if c != 'T' && c != 'Z' && strings.IndexByte("-:./ +,", c) < 0 {
			return false
		}
	}
	if run > 0 {
		groups++
	}
	return groups >= 2
}

// durationLike reports a Go or Prometheus duration ("30s", "1h30m", "250ms").
func durationLike(v string) bool {
	i := 0
	units := 0
	for i < len(v) {
		d := i
		for i < len(v) && (isDigit(v[i]) || v[i] == '.') {
			i++
		}
		if i == d {
			return false
		}
		u := i
		for i < len(v) && isLetter(v[i]) {
			i++
		}
		switch v[u:i] {
		case "ns", "us", "µs", "ms", "s", "m", "h", "d", "w", "y":
		default:
			return false
		}
		units++
	}
	return units > 0
}

func hasLetter(v string) bool {
	for i := 0; i < len(v); i++ {
		if isLetter(v[i]) || v[i] >= 0x80 {
			return true
		}
	}
	return false
}

// plainWord reports a boolean, null or placeholder word ("n/a", "unknown").
func plainWord(v string) bool {
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "on", "off", "null", "nil", "none", "n/a", "na", "-", "unknown", "undefined", "<nil>", "anonymous", "redacted":
		return true
	}
	return false
}
