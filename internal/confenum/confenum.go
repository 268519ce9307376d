// Package confenum checks the enum-like keys of a component's configuration: a typed
// string whose UnmarshalText refuses an unknown value while the configuration is decoded
// (so that the collector's error names the key), and whose Validate says the same of a
// configuration built in code.
package confenum

import "fmt"

// Check says whether v is one of the keys of known; choices words them for the error.
func Check[E ~string, V any](v E, known map[E]V, choices string) error {
	if _, ok := known[v]; !ok {
		return fmt.Errorf("%q is not one of %s", string(v), choices)
	}
	return nil
}

// Unmarshal sets *v to text when text is one of the keys of known, and leaves it as it was
// otherwise.
func Unmarshal[E ~string, V any](v *E, text []byte, known map[E]V, choices string) error {
	if err := Check(E(text), known, choices); err != nil {
		return err
	}
	*v = E(text)
	return nil
}
