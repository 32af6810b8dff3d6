#!/usr/bin/env bash
# Install dependencies, build warning-free (-Werror) with clang, gcc -O0 and
# gcc -O2 (library, tools, examples, benchmarks), and run every test:
#   build-test   gcc: the whole suite (Criterion, Python, Node + Playwright,
#                examples, install check)
#   build-asan   clang, AddressSanitizer + UndefinedBehaviorSanitizer: the
#                Criterion suite (crash-point copy included), the Python
#                suite and examples (ASan runtime preloaded), and libFuzzer
#                on segment images (60 s; 20 min under "long")
#   build-tsan   clang, ThreadSanitizer: the threaded harness (tests/tsan)
# Long runs carry the ctest label "long"; set FAIRSEM_TEST_LABEL=fast to run
# only the everyday suite (the TSan harness always runs).  First of all, the
# C sources must be as clang-format-14 formats them (.clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
jobs=$(nproc)
# Every stage runs even when one fails; the script fails if any did.
status=0

printf '=== clang-format\n'
clang-format-14 --dry-run --Werror src/*.[ch] include/*.h tools/*.[ch] tests/*.c bench/*.c \
  bindings/node/src/*.c || status=1

configure() { # build dir, C compiler, C++ compiler, cmake arguments...
  local dir=$1 cc=$2 cxx=$3
  shift 3
  CC=$cc CXX=$cxx cmake -S . -B "$dir" -DCMAKE_C_FLAGS="-Werror" -DCMAKE_CXX_FLAGS="-Werror" "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
}

configure build-clang clang clang++ -DCMAKE_BUILD_TYPE=Debug
# Optimised builds warn about things -O0 does not see.
configure build-release gcc g++ -DCMAKE_BUILD_TYPE=Release -DFAIRSEM_BUILD_TESTS=OFF
configure build-test gcc g++ -DCMAKE_BUILD_TYPE=Debug
configure build-asan clang clang++ -DCMAKE_BUILD_TYPE=Debug -DFAIRSEM_SANITIZE=address,undefined \
  -DFAIRSEM_BUILD_EXAMPLES=OFF
configure build-tsan clang clang++ -DCMAKE_BUILD_TYPE=Debug -DFAIRSEM_SANITIZE=thread -DFAIRSEM_BUILD_EXAMPLES=OFF

label=()
[ -n "${FAIRSEM_TEST_LABEL:-}" ] && label=(-L "$FAIRSEM_TEST_LABEL")
for dir in build-test build-asan; do
  printf '\n=== ctest in %s\n' "$dir"
  (cd "$dir" && ctest --output-on-failure "${label[@]}") || status=1
done
printf '\n=== ctest in build-tsan\n'
(cd build-tsan && ctest --output-on-failure -L tsan) || status=1
exit $status
