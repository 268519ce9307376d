#!/usr/bin/env bash
# Installs the Debian packages the tests use, only when a command is missing:
# prometheus + promtool (package prometheus), prometheus-alertmanager + amtool
# (package prometheus-alertmanager), cyclictest (package rt-tests: the machine's wake-up
# limit that bench/looptiming measures the control loop against), node and npm (the
# dashboards' type check against Grafana's own types, tools/dashboard-check), skopeo (reads
# the gateway's OCI image as a registry client would, in e2e/packaging), dnsmasq (the DNS
# server the gateway's dns resolver is tested against, e2e/gateway).
set -euo pipefail

declare -A pkg_of=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [cyclictest]=rt-tests
  [node]=nodejs
  [npm]=npm
  [skopeo]=skopeo
  [dnsmasq]=dnsmasq-base
)

missing=()
for cmd in "${!pkg_of[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing Debian packages: $pkgs"
$sudo apt-get update -qq
# The packages' services are not wanted: the tests start their own instances.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs
