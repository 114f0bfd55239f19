#!/usr/bin/env bash
# Unpacks Debian's prometheus package (prometheus and promtool) into
# target/tools/prometheus when it is not there yet; installing the package
# would start a Prometheus server. Used by scripts/test.sh and
# bench/dashboard.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/tools/prometheus/usr/bin/promtool ] && exit 0
sudo_=(); [ "$(id -u)" -eq 0 ] || sudo_=(sudo -n)
"${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
deb=$(mktemp -d)
trap 'rm -rf "$deb"' EXIT
(cd "$deb" && apt-get download -qq prometheus 2>/dev/null)
mkdir -p target/tools
dpkg -x "$deb"/prometheus_*.deb target/tools/prometheus
