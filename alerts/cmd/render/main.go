// Command render writes the shipped Prometheus rule files into a directory for a
// Prometheus to load, with runbook_url pointing at the runbooks' own copy:
//
//	go run ./alerts/cmd/render -runbook-base https://wiki.example.com/fieldcol/runbooks/ \
//	    -out /etc/prometheus/rules.d/fieldcol alerts/rules/*.yaml alerts/slo/slo-rules.yaml
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldcol/fieldcol/alerts"
)

func main() {
	base := flag.String("runbook-base", alerts.RunbookBaseURL, "base URL of the runbooks (alerts/runbooks/<AlertName>.md is appended)")
	out := flag.String("out", "", "directory the rule files are written to (required)")
	flag.Parse()
	if err := run(*base, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(base, out string, files []string) error {
	if out == "" || len(files) == 0 {
		return errors.New("usage: render -runbook-base URL -out DIR RULE_FILE [RULE_FILE ...]")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	seen := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("%s and %s would both be written as %s", prev, f, name)
		}
		seen[name] = f
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		rebased, n, err := alerts.RebaseRunbooks(raw, base)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), rebased, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d runbook URLs under %s\n", filepath.Join(out, name), n, base)
	}
	return nil
}
