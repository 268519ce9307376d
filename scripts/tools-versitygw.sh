#!/usr/bin/env bash
# Builds versitygw (an S3 server that serves a local directory) into .tools/ from its own
# tools module (tools/versitygw/go.mod), so its graph never enters the main module's. The
# backup tests start it on a loopback port as the object store restic writes to. It is
# rebuilt only when the tools module changed, so `make test` pays the cold build (about
# 2 minutes on 2 cores) once per machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod=$root/tools/versitygw
bin=$root/.tools/versitygw
mkdir -p "$root/.tools"

if [ -x "$bin" ] && [ "$bin" -nt "$mod/go.mod" ] && [ "$bin" -nt "$mod/go.sum" ]; then
	exit 0
fi
echo "tools-versitygw: building versitygw from tools/versitygw" >&2
start=$(date +%s)
# nice: the machine's two cores are shared with the other builds and tests.
(cd "$mod" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$bin.tmp" github.com/versity/versitygw/cmd/versitygw)
mv "$bin.tmp" "$bin"
echo "tools-versitygw: built in $(($(date +%s) - start)) s" >&2
