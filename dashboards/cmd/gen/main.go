// Command gen writes fieldcol's dashboards as JSON into a directory (make dashboards:
// go run ./dashboards/cmd/gen -out dashboards/json).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldcol/fieldcol/dashboards"
)

func main() {
	out := flag.String("out", "dashboards/json", "directory the dashboard JSON files are written to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range dashboards.All() {
		raw, err := dashboards.Render(s.Builder)
		if err != nil {
			return fmt.Errorf("%s: %w", s.File, err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.File), raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}
