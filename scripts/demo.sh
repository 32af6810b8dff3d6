#!/usr/bin/env bash
# Install dependencies, build, and run the demo: two tenants sharing 10
# tabs across processes, first on a POSIX semaphore, then on fairsem.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAIRSEM_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/examples/demo
