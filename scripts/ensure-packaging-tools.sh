#!/usr/bin/env bash
# Installs what the packaging tests use, only when missing: the Debian packages
# qemu-user-static (the arm builds under emulation), lintian, ansible (playbook syntax
# check), systemd (systemd-analyze), and for the e2e/systemd tier mmdebstrap (its Debian
# root; arch-test for an arm64 one) and systemd-container (systemd-nspawn boots it).
# nfpm is a Go tool: make .tools/nfpm.
set -euo pipefail

declare -A pkg_of=(
	[qemu-aarch64-static]=qemu-user-static
	[qemu-arm-static]=qemu-user-static
	[lintian]=lintian
	[ansible-playbook]=ansible
	[systemd-analyze]=systemd
	[dpkg-deb]=dpkg
	[mmdebstrap]=mmdebstrap
	[arch-test]=arch-test
	[systemd-nspawn]=systemd-container
	[nsenter]=util-linux
)
missing=()
for cmd in "${!pkg_of[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "installing Debian packages: $pkgs" >&2
	$sudo apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs
fi

