#!/bin/sh
# Runs every fuzz target of the module for a time budget each (FIELDCOL_FUZZTIME, default 20s),
# one target at a time: go test -fuzz takes one target of one package per run. A failure
# leaves the crashing input in the package's testdata/fuzz/ and fails the run.
set -eu
GO=${GO:-go}
budget=${FIELDCOL_FUZZTIME:-20s}
status=0
for file in $(git ls-files '*_test.go'); do
	grep -q '^func Fuzz' "$file" || continue
	dir=./$(dirname "$file")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "fuzz $dir $target ($budget)"
		$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" "$dir" || status=1
	done
done
exit $status
