//go:generate ../../.tools/mdatagen metadata.yaml

// Package piiredactionprocessor finds personal data in traces, metrics and logs and masks,
// hashes (HMAC-SHA256 pseudonyms) or drops it.
package piiredactionprocessor // import "github.com/fieldcol/fieldcol/processors/piiredactionprocessor"
