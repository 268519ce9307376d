#!/usr/bin/env bash
# Release builds into dist/: static, stripped, version-stamped binaries, the fieldcol-edge
# .deb packages (nfpm, packaging/nfpm.yaml) and SHA256SUMS over everything built.
#
#   scripts/dist.sh            every target: make dist
#   scripts/dist.sh --test     what make test needs: fieldcol-edge for amd64, arm64 and armv7,
#                              and the amd64 .deb (the gateway's cross builds and the arm
#                              .debs are release work, not test work); DIST_DEBS="amd64 arm64"
#                              adds the arm64 .deb (make soak)
#   scripts/dist.sh --gateway  fieldcol-gateway for amd64 and arm64 only: what make image
#                              puts into the image (no .deb, no SHA256SUMS)
#
# It builds from the sources ocb generated under _build/<name> (make build generates them;
# make dist and make test depend on it), so a cross build reuses them and the Go build cache
# instead of running ocb again. The release version is linked in (-X on
# cmd/fieldcolmain.version), so no generated file is copied or edited.
#
# VERSION (default: the manifest's version + git date and commit, e.g.
# 0.1.0+git20261126.b43c335) is what `fieldcol-edge --version` prints and the package's
# version. NFPM (default .tools/nfpm) is built by make from tools/nfpm.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=dist
nfpm=${NFPM:-$root/.tools/nfpm}

mode=all
case ${1:-} in
"") ;;
--test) mode=test ;;
--gateway) mode=gateway ;;
*)
	echo "usage: $0 [--test]" >&2
	exit 2
	;;
esac

manifest_version=$(sed -n 's/^  version: *//p' distributions/edge/manifest.yaml | head -n1)
[ -n "$manifest_version" ] || {
	echo "dist: no dist.version in distributions/edge/manifest.yaml" >&2
	exit 1
}
if [ -z "${VERSION:-}" ]; then
	VERSION="$manifest_version+git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short HEAD)"
fi
# The version goes into -ldflags (one word) and a Debian version: keep it to the characters both allow.
[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || {
	echo "dist: VERSION $VERSION must start with a digit and hold only [0-9A-Za-z.+~-]" >&2
	exit 1
}

# name goos goarch goarm output-suffix (Debian architecture for the edge's .deb)
if [ "$mode" = test ]; then
	targets=(
		"fieldcol-edge amd64 - amd64"
		"fieldcol-edge arm64 - arm64"
		"fieldcol-edge arm 7 armhf"
	)
	# DIST_DEBS="amd64 arm64": make soak adds the arm64 .deb (e2e/systemd under emulation).
	read -r -a debs <<<"${DIST_DEBS:-amd64}"
elif [ "$mode" = gateway ]; then
	targets=(
		"fieldcol-gateway amd64 - amd64"
		"fieldcol-gateway arm64 - arm64"
	)
	debs=()
else
	targets=(
		"fieldcol-edge amd64 - amd64"
		"fieldcol-edge arm64 - arm64"
		"fieldcol-edge arm 7 armhf"
		"fieldcol-gateway amd64 - amd64"
		"fieldcol-gateway arm64 - arm64"
	)
	debs=(amd64 arm64 armhf)
fi

# check NAME: _build/NAME is a module that scripts/ocb-build.sh generated and wired.
check() {
	local src=_build/$1
	cmp -s distributions/_ocb/main_others.go "$src/main_others.go" || {
		echo "dist: $src is missing or not wired by scripts/ocb-build.sh: run make build first" >&2
		exit 1
	}
}

mkdir -p "$out"
checked=""
built=()
for t in "${targets[@]}"; do
	read -r name goarch goarm suffix <<<"$t"
	case " $checked " in *" $name "*) ;; *)
		check "$name"
		checked="$checked $name"
		;;
	esac
	bin=$out/${name}_linux_${suffix}
	start=$(date +%s)
	# nice: the two cores are shared with other builds and tests.
	armenv=()
	[ "$goarch" = arm ] && armenv=(GOARM="$goarm")
	(
		cd "_build/$name"
		env CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" "${armenv[@]}" \
			nice -n 10 go build -trimpath -ldflags "-s -w -X github.com/fieldcol/fieldcol/cmd/fieldcolmain.version=$VERSION" \
			-o "$root/$bin.tmp" .
	)
	mv "$bin.tmp" "$bin"
	echo "dist: $bin ($(stat -c %s "$bin") bytes) in $(($(date +%s) - start)) s" >&2
	built+=("$bin")
done
if [ "$mode" = gateway ]; then
	# dist/SHA256SUMS stays that of the last full or test run.
	echo "dist: $VERSION: ${built[*]}" >&2
	exit 0
fi

[ -x "$nfpm" ] || {
	echo "dist: $nfpm is not built (make $nfpm)" >&2
	exit 1
}
for arch in "${debs[@]}"; do
	bin=$out/fieldcol-edge_linux_$arch
	[ -f "$bin" ] || {
		echo "dist: $bin was not built" >&2
		exit 1
	}
	deb=$out/fieldcol-edge_${VERSION}-1_$arch.deb
	rm -f "$deb"
	FIELDCOL_ARCH=$arch FIELDCOL_VERSION=$VERSION FIELDCOL_EDGE_BINARY=$bin \
		"$nfpm" package --config packaging/nfpm.yaml --packager deb --target "$deb" >&2
	built+=("$deb")
done

# SHA256SUMS lists what this run built, by file name, for `sha256sum -c` inside dist/.
(cd "$out" && for f in "${built[@]}"; do basename "$f"; done | xargs sha256sum >SHA256SUMS)
echo "dist: $VERSION: ${built[*]} and $out/SHA256SUMS" >&2
