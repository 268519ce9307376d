package detect

// ibanLengths is the IBAN length of each country of the SWIFT IBAN registry (and the French
// overseas territories that print their own code). A lower-case candidate must have its
// country's exact length; upper case is trusted on the mod-97 check alone, so a country missing
// here is still found when written the usual way.
var ibanLengths = map[[2]byte]uint8{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28, {'B', 'A'}: 20,
	{'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'I'}: 27, {'B', 'L'}: 27, {'B', 'R'}: 29,
	{'B', 'Y'}: 28, {'C', 'H'}: 21, {'C', 'R'}: 22, {'C', 'Y'}: 28, {'C', 'Z'}: 24, {'D', 'E'}: 22,
	{'D', 'J'}: 27, {'D', 'K'}: 18, {'D', 'O'}: 28, {'E', 'E'}: 20, {'E', 'G'}: 29, {'E', 'S'}: 24,
	{'F', 'I'}: 18, {'F', 'K'}: 18, {'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22, {'G', 'E'}: 22,
	{'G', 'F'}: 27, {'G', 'I'}: 23, {'G', 'L'}: 18, {'G', 'P'}: 27, {'G', 'R'}: 27, {'G', 'T'}: 28,
	{'H', 'N'}: 28, {'H', 'R'}: 21, {'H', 'U'}: 28, {'I', 'E'}: 22, {'I', 'L'}: 23, {'I', 'Q'}: 23,
	{'I', 'S'}: 26, {'I', 'T'}: 27, {'J', 'O'}: 30, {'K', 'W'}: 30, {'K', 'Z'}: 20, {'L', 'B'}: 28,
	{'L', 'C'}: 32, {'L', 'I'}: 21, {'L', 'T'}: 20, {'L', 'U'}: 20, {'L', 'V'}: 21, {'L', 'Y'}: 25,
	{'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22, {'M', 'F'}: 27, {'M', 'K'}: 19, {'M', 'N'}: 20,
	{'M', 'Q'}: 27, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'C'}: 27, {'N', 'I'}: 28,
	{'N', 'L'}: 18, {'N', 'O'}: 15, {'O', 'M'}: 23, {'P', 'F'}: 27, {'P', 'K'}: 24, {'P', 'L'}: 28,
	{'P', 'M'}: 27, {'P', 'S'}: 29, {'P', 'T'}: 25, {'Q', 'A'}: 29, {'R', 'E'}: 27, {'R', 'O'}: 24,
	{'R', 'S'}: 22, {'R', 'U'}: 33, {'S', 'A'}: 24, {'S', 'C'}: 31, {'S', 'D'}: 18, {'S', 'E'}: 24,
	{'S', 'I'}: 19, {'S', 'K'}: 24, {'S', 'M'}: 27, {'S', 'O'}: 23, {'S', 'T'}: 25, {'S', 'V'}: 28,
	{'T', 'F'}: 27, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26, {'U', 'A'}: 29, {'V', 'A'}: 22,
	{'V', 'G'}: 24, {'W', 'F'}: 27, {'X', 'K'}: 20, {'Y', 'E'}: 30, {'Y', 'T'}: 27,
}

// scanIBAN checks for an IBAN at the word start i, written compact ("DE89370400440532013000")
// or in the printed groups of four ("DE89 3704 0044 0532 0130 00"). It returns the end of the
// match, or -1.
func scanIBAN(s string, i int, dst []Match) ([]Match, int) {
	n := len(s)
	if i+15 > n || !isLetter(s[i]) || !isLetter(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return dst, -1
	}
	upper := class[s[i]]&cUpper != 0 && class[s[i+1]]&cUpper != 0
	want := int(ibanLengths[[2]byte{toUpper(s[i]), toUpper(s[i+1])}])
	if !upper && want == 0 {
		return dst, -1
	}
	// Candidate ends: after each printed group of four, and at the end of the run.
	var ends [10]int
	var counts [10]int
	ne := 0
	pos, count, groupLen := i, 0, 0
	for pos < n && count <= 34 {
		c := s[pos]
		if isLetter(c) || isDigit(c) {
			count++
			groupLen++
			pos++
			continue
		}
		if (c == ' ' || c == '-') && groupLen == 4 && pos+1 < n && (isLetter(s[pos+1]) || isDigit(s[pos+1])) {
			if ne < len(ends) {
				ends[ne], counts[ne] = pos, count
				ne++
			}
			groupLen = 0
			pos++
			continue
		}
		break
	}
	if count <= 34 && (pos == n || !isWord(s[pos])) && ne < len(ends) {
		ends[ne], counts[ne] = pos, count
		ne++
	}
	for k := ne - 1; k >= 0; k-- {
		c := counts[k]
		if c < 15 || c > 34 || (want != 0 && c != want && !upper) {
			continue
		}
		if want != 0 && c != want && upper {
			// A known country with the wrong length is not an IBAN, whatever mod 97 says.
			continue
		}
		if mod97(s[i:ends[k]]) == 1 {
			return add(dst, i, ends[k], IBAN), ends[k]
		}
	}
	return dst, -1
}

// mod97 computes the ISO 7064 MOD 97-10 remainder of an IBAN, skipping separators.
func mod97(s string) int {
	r := 0
	for k := 4; k < len(s); k++ {
		r = mod97Step(r, s[k])
	}
	for k := 0; k < 4; k++ {
		r = mod97Step(r, s[k])
	}
	return r
}

func mod97Step(r int, c byte) int {
	switch {
	case isDigit(c):
		return (r*10 + int(c-'0')) % 97
	case isLetter(c):
		return (r*100 + int(toUpper(c)-'A'+10)) % 97
	}
	return r
}
