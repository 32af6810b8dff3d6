#!/usr/bin/env bash
# The Python package as a user gets it: a wheel built offline from
# bindings/python (and one from its sdist, outside the checkout), installed
# into a fresh venv, then used from another directory, with no environment
# variable, by two processes sharing one pool.  Usage: install_wheel.sh
set -euo pipefail
# shellcheck source=install/common.sh
. "$(dirname "$0")/install/common.sh"
make_scratch wheel
unset FAIRSEM_LIBRARY
python=/usr/bin/python3

echo "=== wheel from bindings/python"
$python -m pip wheel -q --no-build-isolation --no-deps -w "$scratch/dist" "$repo/bindings/python"
wheel=$(ls "$scratch"/dist/fairsem-*.whl)
echo "$(basename "$wheel"): $(stat -c %s "$wheel") bytes"
case "$(basename "$wheel")" in
  fairsem-*-py3-none-linux_*.whl) ;;
  *) echo "not tagged for the platform: $wheel" >&2; exit 1 ;;
esac
$python -m zipfile -l "$wheel" >"$scratch/wheel.list"
grep -q '^fairsem/libfairsem.so ' "$scratch/wheel.list"

echo "=== sdist, and a wheel from it outside the checkout"
(cd "$repo/bindings/python" && $python -c \
  'import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])' "$scratch/sdist") \
  >"$scratch/sdist.log" 2>&1 || { cat "$scratch/sdist.log"; exit 1; }
sdist=$(ls "$scratch"/sdist/fairsem-*.tar.gz)
tar tzf "$sdist" >"$scratch/sdist.list"
grep -q '/csrc/src/sem.c$' "$scratch/sdist.list"
grep -q '/csrc/include/fairsem.h$' "$scratch/sdist.list"
$python -m pip wheel -q --no-build-isolation --no-deps -w "$scratch/from-sdist" "$sdist"
ls "$scratch"/from-sdist/fairsem-*-py3-none-linux_*.whl >/dev/null

echo "=== fresh venv, used from another directory"
$python -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --no-index "$wheel"
mkdir "$scratch/elsewhere"
cp "$here/wheel_user.py" "$scratch/elsewhere/"
two_processes "$scratch/elsewhere" "$name" "$scratch/venv/bin/python" wheel_user.py
site=$("$scratch/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
for who in holder waiter; do
  grep -qx "module $site/fairsem/__init__.py" "$scratch/elsewhere/$who.out"
  grep -qx "library $site/fairsem/libfairsem.so" "$scratch/elsewhere/$who.out"
done
(cd "$scratch/elsewhere" && "$scratch/venv/bin/python" -c \
  "from fairsem import FairShareSemaphore as F; F.unlink('$name')")
[ ! -e "/dev/shm/${name#/}" ]

echo "=== FAIRSEM_LIBRARY still overrides"
cp "$site/fairsem/libfairsem.so" "$scratch/other-libfairsem.so"
(cd "$scratch/elsewhere" && FAIRSEM_LIBRARY="$scratch/other-libfairsem.so" "$scratch/venv/bin/python" -c \
  'import fairsem, sys; sys.exit(fairsem.LIBRARY_PATH != sys.argv[1])' "$scratch/other-libfairsem.so")
if (cd "$scratch/elsewhere" && FAIRSEM_LIBRARY="$scratch/missing.so" "$scratch/venv/bin/python" -c 'import fairsem') \
    2>"$scratch/err"; then
  echo "a missing FAIRSEM_LIBRARY was ignored" >&2; exit 1
fi
grep -q "FAIRSEM_LIBRARY=$scratch/missing.so does not load" "$scratch/err"

echo "=== an installed copy without its library says how to fix it"
rm "$site/fairsem/libfairsem.so"
if (cd "$scratch/elsewhere" && "$scratch/venv/bin/python" -c 'import fairsem') 2>"$scratch/err"; then
  echo "imported without a library" >&2; exit 1
fi
grep -q "pip wheel --no-build-isolation" "$scratch/err"
echo "install_wheel: ok"
