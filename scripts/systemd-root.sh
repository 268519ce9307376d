#!/usr/bin/env bash
# Builds (once) a minimal Debian bookworm root with systemd as init, for the e2e/systemd tier:
# systemd-nspawn boots it and the tier installs the fieldcol-edge .deb inside. Prints the
# root's directory on stdout.
#
#   scripts/systemd-root.sh ARCH      ARCH: amd64 (native) or arm64 (under qemu-user-static)
#
# The root is cached under FIELDCOL_ROOT_CACHE (default .tools/systemd-root) in a directory
# named after ARCH and a hash of its recipe (suite, variant, packages, customize hooks), so
# a change of the package list below builds a new one; older ones are deleted. mmdebstrap takes the packages
# from the machine's own apt configuration, about a minute natively. It needs root.
#
# For arm64 it registers qemu-user-static's aarch64 interpreter in binfmt_misc (mounting
# binfmt_misc first), so that the root's maintainer scripts and later its systemd run under
# emulation.
set -euo pipefail

arch=${1:?usage: $0 amd64|arm64}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FIELDCOL_ROOT_CACHE:-$root/.tools/systemd-root}
# What a Pi running Raspberry Pi OS Lite has that the tier uses: systemd as PID 1 with dbus,
# adduser (the package's postinst), restic and curl (the package recommends them for
# fieldcol-backup), ca-certificates for restic's TLS.
packages=systemd,systemd-sysv,dbus,adduser,restic,curl,ca-certificates

[ "$(id -u)" -eq 0 ] || {
	echo "$0: needs root (mmdebstrap, then systemd-nspawn)" >&2
	exit 1
}
command -v mmdebstrap >/dev/null || {
	echo "$0: mmdebstrap is missing (scripts/ensure-packaging-tools.sh installs it)" >&2
	exit 1
}

if [ "$arch" != "$(dpkg --print-architecture)" ]; then
	case $arch in
	arm64) qemu=aarch64 ;;
	*)
		echo "$0: no emulation set up for $arch" >&2
		exit 1
		;;
	esac
	conf=/usr/lib/binfmt.d/qemu-$qemu.conf
	[ -r "$conf" ] || {
		echo "$0: $conf is missing (Debian package qemu-user-static)" >&2
		exit 1
	}
	if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	fi
	if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$qemu" ]; then
		cat "$conf" >/proc/sys/fs/binfmt_misc/register
	fi
fi

# The recipe: everything the root is built from. Its hash names the cached root.
hooks=(
	# A Pi's image names localhost in /etc/hosts; a bare root does not, and the edge's
	# default endpoints (localhost:8090, ...) would go to DNS.
	'printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" >"$1/etc/hosts"'
	'echo fieldcol-pi >"$1/etc/hostname"'
)
key=$(printf '%s\n' bookworm minbase "$arch" "$packages" "${hooks[@]}" | sha256sum | cut -c1-16)
dir=$cache/$arch-$key
mkdir -p "$cache"
# One build per architecture at a time: two tiers (or two developers) asking at once wait
# for the first.
exec 9>"$cache/.lock-$arch"
flock 9
if [ ! -e "$dir/.complete" ]; then
	for old in "$cache/$arch"-*; do
		[ -e "$old" ] && rm -rf "$old"
	done
	tmp=$dir.tmp
	rm -rf "$tmp"
	start=$(date +%s)
	hook_args=()
	for h in "${hooks[@]}"; do
		hook_args+=(--customize-hook="$h")
	done
	mmdebstrap --quiet --variant=minbase --architectures="$arch" --include="$packages" \
		"${hook_args[@]}" bookworm "$tmp" >&2
	mv "$tmp" "$dir"
	touch "$dir/.complete"
	echo "$0: built the $arch root in $(($(date +%s) - start)) s: $dir" >&2
fi
echo "$dir"
