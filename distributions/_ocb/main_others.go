//go:build !windows

// This file replaces the main_others.go that ocb generates for every distribution
// (scripts/ocb-build.sh copies it over ocb's, under _build/<name>). The directory starts
// with "_" so that the go command never builds it as part of this repository: it belongs to
// the generated main package, beside ocb's main.go and components.go.
//
// Why this survives an ocb upgrade: it depends on no text of ocb's output, only on two Go
// names of the generated package that have been stable across many ocb releases: main.go
// calls run(set) with the otelcol.CollectorSettings it built from the manifest, and
// runInteractive(set) runs the collector's own command. Everything else ocb generates
// (providers, converters, build info, components, telemetry) stays ocb's and follows every
// upgrade unchanged. Should an upgrade rename either function, or define run in another
// file, the build stops with a compile error (undefined or redeclared), never with a binary
// that silently lost the wiring.
package main

import (
	"go.opentelemetry.io/collector/otelcol"

	"github.com/fieldcol/fieldcol/cmd/fieldcolmain"
)

// run adds fieldcol's subcommands (safe-outputs, hardware-probe) in front of the
// collector's command line and forgives the last self-telemetry push at a clean stop.
func run(params otelcol.CollectorSettings) error {
	return fieldcolmain.Main(params, runInteractive)
}
