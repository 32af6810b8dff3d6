#!/usr/bin/env bash
# Install dependencies, build warning-free (-Werror) with clang, gcc -O0 and
# gcc -O2 (library, tools, examples, benchmarks), and
# run every test.  Long torture runs carry the ctest label "long"; set
# FAIRSEM_TEST_LABEL=fast to run only the everyday suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
jobs=$(nproc)

CC=clang CXX=clang++ cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS="-Werror" -DCMAKE_CXX_FLAGS="-Werror" >/dev/null
cmake --build build-clang -j"$jobs" >/dev/null

# Optimised builds warn about things -O0 does not see.
CC=gcc CXX=g++ cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DFAIRSEM_BUILD_TESTS=OFF \
  -DCMAKE_C_FLAGS="-Werror" -DCMAKE_CXX_FLAGS="-Werror" >/dev/null
cmake --build build-release -j"$jobs" >/dev/null

CC=gcc CXX=g++ cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS="-Werror" -DCMAKE_CXX_FLAGS="-Werror" >/dev/null
cmake --build build-test -j"$jobs" >/dev/null

cd build-test
label=()
[ -n "${FAIRSEM_TEST_LABEL:-}" ] && label=(-L "$FAIRSEM_TEST_LABEL")
ctest --output-on-failure "${label[@]}"
