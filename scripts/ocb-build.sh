#!/usr/bin/env bash
# Builds one distribution: ocb generates its main module under _build/<name> from the
# manifest; distributions/_ocb/main_others.go takes the place of ocb's main_others.go, so
# that the generated main runs cmd/fieldcolmain.Main (the `safe-outputs` subcommand that
# systemd runs after every exit of the service, `hardware-probe`, and a clean stop that
# exits 0 although the last push of the collector's own metrics finds its receiver gone);
# go builds it static and stripped, as ocb itself would. No generated file is edited: see
# distributions/_ocb/main_others.go for why this holds across ocb upgrades.
#
#   scripts/ocb-build.sh MANIFEST NAME OUT    (GOOS, GOARCH, GOARM are honoured)
set -euo pipefail
manifest=$1 name=$2 out=$3
ocb=${OCB:-.tools/builder}
dir=_build/$name
root=$(pwd)

mkdir -p _build "$(dirname "$out")"
"$ocb" --config "$manifest" --skip-compilation
cp distributions/_ocb/main_others.go "$dir/main_others.go"
# ocb resolved the modules of the manifest's components only; fieldcolmain brings the
# control loop's (periph, go-systemd) to a distribution without it, such as the gateway.
# Their versions come from this repository's go.mod through the replace.
(cd "$dir" && go mod tidy)

(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/$out" .)
