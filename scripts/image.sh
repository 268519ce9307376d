#!/usr/bin/env bash
# The fieldcol-gateway OCI image, without a container runtime (tools/ociimage, on
# go-containerregistry): a multi-arch image index (linux/amd64 and linux/arm64) of a minimal
# base (CA certificates, user fieldcol 10001, no shell), the gateway's configs and the static
# binary, labelled with the version and the source commit, each platform's CycloneDX SBOM
# (cyclonedx-gomod from the binary's build info) attached as an OCI 1.1 artifact.
#
#   scripts/image.sh          make image: dist/fieldcol-gateway_linux_{amd64,arm64}
#                             (scripts/dist.sh --gateway) -> dist/image/oci and
#                             dist/image/fieldcol-gateway-VERSION.oci.tar
#   scripts/image.sh --test   what make test needs: linux/amd64 only, from bin/fieldcol-gateway
#                             (already built for the e2e tiers) -> dist/image-test/
#
# Push: crane push --index dist/image/oci REGISTRY/fieldcol-gateway:VERSION (docs/gateway.md).
# VERSION as in scripts/dist.sh; OCIIMAGE and CYCLONEDX default to .tools/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ociimage=${OCIIMAGE:-$root/.tools/ociimage}
cyclonedx=${CYCLONEDX:-$root/.tools/cyclonedx-gomod}

mode=release
case ${1:-} in
"") ;;
--test) mode=test ;;
*)
	echo "usage: $0 [--test]" >&2
	exit 2
	;;
esac

manifest_version=$(sed -n 's/^  version: *//p' distributions/gateway/manifest.yaml | head -n1)
if [ -z "${VERSION:-}" ]; then
	VERSION="$manifest_version+git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short HEAD)"
fi
# An OCI tag allows [A-Za-z0-9_.-]: the '+' of the version becomes '-'.
tag=${VERSION//+/-}
revision=$(git rev-parse HEAD)
# The commit's time, so that the same commit gives the same image digest.
created=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)

if [ "$mode" = test ]; then
	out=dist/image-test
	declare -A binaries=([linux/amd64]=bin/fieldcol-gateway)
else
	out=dist/image
	declare -A binaries=([linux/amd64]=dist/fieldcol-gateway_linux_amd64 [linux/arm64]=dist/fieldcol-gateway_linux_arm64)
fi

mkdir -p "$out"
args=()
for platform in "${!binaries[@]}"; do
	bin=${binaries[$platform]}
	[ -x "$bin" ] || {
		echo "image: $bin is not built (make build, or scripts/dist.sh --gateway)" >&2
		exit 1
	}
	sbom=$out/sbom_${platform//\//_}.cdx.json
	"$cyclonedx" bin -json -noserial -notimestamp -version "v${VERSION%%+*}" -output "$sbom" "$bin" 2>/dev/null
	args+=(-binary "$platform=$bin" -sbom "$platform=$sbom")
done

"$ociimage" -out "$out" -version "$tag" -revision "$revision" -created "$created" \
	-config lb.yaml=distributions/gateway/lb.yaml \
	-config sampler.yaml=distributions/gateway/sampler.yaml \
	-config config.yaml=distributions/gateway/config.yaml \
	-default-config lb.yaml "${args[@]}"
