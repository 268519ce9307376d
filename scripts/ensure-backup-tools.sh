#!/usr/bin/env bash
# Installs what the backup tests need when it is missing: restic (Debian package restic, the
# same package Raspberry Pi OS ships) and curl (fieldcol-backup pushes its results with it)
# with apt-get. versitygw, the S3 server they write to, is a Go tool: make .tools/versitygw.
set -euo pipefail

missing=()
command -v restic >/dev/null 2>&1 || missing+=(restic)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "installing Debian packages: ${missing[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
