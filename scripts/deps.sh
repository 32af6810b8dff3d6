#!/usr/bin/env bash
# Install what building and testing fairsem needs, from Debian's archive.
# Skips apt entirely when everything is already there.
set -euo pipefail
# Building needs the first line (libmicrohttpd: the HTTP server of
# `fairsem serve`); `deps.sh --test` adds what the tests run (Prometheus
# scraping the exporter, its promtool, node_exporter's textfile collector
# and Python's prometheus_client check the exporter's output;
# Criterion, clang for the warning check and with libclang-rt-14-dev its
# sanitizer and libFuzzer runtimes, clang-format-14 for the format check,
# pytest, Chromium for Playwright; for the install tests: pip, venv,
# setuptools and wheel to build and install the wheel, dpkg-dev and file for
# cpack's .deb, Node with npm and its headers for the npm tarball; gunicorn
# for the pre-fork server test).  `deps.sh --bench` adds what the benchmarks
# use: gnuplot for fairsem-bench --chart, valgrind for the
# instructions-per-pair count.
pkgs=(build-essential cmake pkg-config liburcu-dev libmicrohttpd-dev)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(gnuplot-nox valgrind)
fi
if [ "${1:-}" = "--test" ]; then
  pkgs+=(clang libclang-rt-14-dev clang-format-14 libcriterion-dev python3 python3-pytest python3-pytest-asyncio chromium
    python3-pip python3-venv python3-setuptools python3-wheel dpkg-dev file gunicorn prometheus
    prometheus-node-exporter python3-prometheus-client)
  # Node from Debian unless a Node is installed already (another build of
  # Node bundles npm and may ship its headers).
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node || echo /usr/bin/node)")")")
  [ -f /usr/include/node/node_api.h ] || [ -f "$node_prefix/include/node/node_api.h" ] || pkgs+=(libnode-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi
