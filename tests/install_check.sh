#!/usr/bin/env bash
# Install the build in BUILD_DIR into a scratch prefix, then build and run a
# consumer through the CMake package (shared and static) and through
# pkg-config, and run the installed command, which must find the installed
# library through its RUNPATH alone.  Usage: install_check.sh BUILD_DIR
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/install" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$src" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/cmake" >/dev/null
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/cmake/consumer_shared"
"$scratch/cmake/consumer_static"
flags=$(PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig" pkg-config --cflags --libs fairsem)
# shellcheck disable=SC2086
cc "$src/consumer.c" $flags -o "$scratch/pc"
LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/pc"
grep -q 'RUNPATH.*\$ORIGIN/\.\./lib' <<<"$(readelf -d "$scratch/prefix/bin/fairsem")"
env -u LD_LIBRARY_PATH "$scratch/prefix/bin/fairsem" --version
test -f "$scratch/prefix/share/man/man1/fairsem.1"
