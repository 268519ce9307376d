#!/usr/bin/env bash
# Builds the store and chart tools the gateway-tier tests use into .tools/, each from a
# tools module of its own (tools/<name>/go.mod) so none of them enters the main module's
# graph. A tool is rebuilt only when a file of its tools module is newer than the binary, so
# `make test` pays the cold build once per machine (13.7 minutes measured here on 2 cores
# shared with other builds, 9.5 CPU-minutes; see docs/gateway.md) and nothing afterwards.
#
#   scripts/tools-stores.sh            build what is missing or stale
#   scripts/tools-stores.sh NAME...    only these (victoria-logs, helm, k8sdecode, jaeger)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/.tools
mkdir -p "$out"

# name, tools module folder, package to build.
tools=(
	"victoria-logs victorialogs github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
	"helm helm helm.sh/helm/v3/cmd/helm"
	"k8sdecode k8sdecode github.com/fieldcol/fieldcol/tools/k8sdecode"
	"jaeger jaeger github.com/jaegertracing/jaeger/cmd/jaeger"
)

want=("$@")

selected() {
	[ ${#want[@]} -eq 0 ] && return 0
	local w
	for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
	return 1
}

for entry in "${tools[@]}"; do
	read -r name dir pkg <<<"$entry"
	selected "$name" || continue
	bin=$out/$name
	mod=$root/tools/$dir
	if [ -x "$bin" ] && [ -z "$(find "$mod" -type f -newer "$bin" -print -quit)" ]; then
		continue
	fi
	echo "tools-stores: building $name from tools/$dir" >&2
	start=$(date +%s)
	# nice: the machine's two cores are shared with the other builds and tests.
	(cd "$mod" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$bin.tmp" "$pkg")
	mv "$bin.tmp" "$bin"
	echo "tools-stores: $name built in $(($(date +%s) - start)) s" >&2
done
