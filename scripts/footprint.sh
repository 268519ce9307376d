#!/usr/bin/env bash
# make footprint: the edge's footprint as docs/footprint.md reports it. Sizes of every
# binary in dist/ (make dist builds them) and bin/, then fieldcol-edge with the default
# config and the unit's GOMEMLIMIT: RSS idle for 60 s, RSS and CPU share under 1,000 OTLP
# data points/s for 60 s (e2e TestFootprint, which fails when a target is missed).
#
#   scripts/footprint.sh    (FIELDCOL_FOOTPRINT_SECONDS shortens each phase for a quick look)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x bin/fieldcol-edge ] || {
	echo "footprint: bin/fieldcol-edge is not built (make build)" >&2
	exit 1
}
FIELDCOL_FOOTPRINT=1 FIELDCOL_E2E_NO_BUILD=1 go test -count=1 -v -timeout 10m -run '^TestFootprint$' ./e2e/edge/
