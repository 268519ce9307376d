#!/usr/bin/env bash
# Builds one distribution: ocb generates its main module under _build/<name> from the
# manifest, the generated main is wired to cmd/fieldcolmain.Main (the `safe-outputs`
# subcommand that systemd runs after every exit of the service; and a clean stop exits 0
# although the last push of the collector's own metrics finds its receiver gone), and go
# builds it static and stripped, as ocb itself would.
#
#   scripts/ocb-build.sh MANIFEST NAME OUT    (GOOS, GOARCH, GOARM are honoured)
set -euo pipefail
manifest=$1 name=$2 out=$3
ocb=${OCB:-.tools/builder}
dir=_build/$name

mkdir -p _build "$(dirname "$out")"
"$ocb" --config "$manifest" --skip-compilation

main=$dir/main.go
grep -q 'if err := run(set); err != nil {' "$main" || {
  echo "ocb-build: $main no longer has the expected run(set) call; update scripts/ocb-build.sh" >&2
  exit 1
}
sed -i \
  -e 's#if err := run(set); err != nil {#if err := fieldcolmain.Main(set, run); err != nil {#' \
  -e 's#^\t"os"$#\t"os"\n\n\t"github.com/fieldcol/fieldcol/cmd/fieldcolmain"#' \
  "$main"
# ocb resolved the modules of the manifest's components only; fieldcolmain brings the
# control loop's (periph, go-systemd) to a distribution without it, such as the gateway.
# Their versions come from this repository's go.mod through the replace.
(cd "$dir" && go mod tidy)

(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OLDPWD/$out" .)
