#!/usr/bin/env bash
# Install what building and testing fairsem needs, from Debian's archive.
# Skips apt entirely when everything is already there.
set -euo pipefail
# Building needs the first line; `deps.sh --test` adds what the tests run
# (Criterion, clang for the warning check, pytest, Chromium for Playwright).
pkgs=(build-essential cmake pkg-config liburcu-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(clang libcriterion-dev python3 python3-pytest python3-pytest-asyncio chromium)
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
