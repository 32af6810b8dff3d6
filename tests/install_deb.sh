#!/usr/bin/env bash
# The C library and the command as a Debian user gets them: a build
# configured for /usr, `cpack -G DEB`, the package installed with dpkg, the
# `fairsem` command run from PATH, a consumer built with pkg-config and one
# with find_package (no LD_LIBRARY_PATH, no prefix given), then the package
# removed with dpkg -r and every file it installed gone.  Needs root; refuses
# to touch a machine where a fairsem package or any of its files is already
# installed.  Usage: install_deb.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
name="/fairsem-deb-$$"
installed_by_us=0
cleanup() {
  rm -f "/dev/shm/${name#/}"
  if [ "$installed_by_us" = 1 ]; then dpkg_locked -r fairsem >/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "install_deb: needs root (dpkg -i)" >&2; exit 1; }
# One run at a time on this machine (another worktree may run it too).
exec 9>/var/lock/fairsem-install-deb.lock
flock 9

# dpkg, waiting while apt or another dpkg holds the package database.
dpkg_locked() {
  local out rc
  while :; do
    rc=0
    out=$(dpkg "$@" 2>&1) || rc=$?
    if [ "$rc" -ne 0 ] && grep -q "lock" <<<"$out" && grep -qi "held by\|locked\|lock-frontend" <<<"$out"; then
      sleep 1
      continue
    fi
    printf '%s\n' "$out"
    return "$rc"
  done
}

echo "=== build for /usr and cpack -G DEB"
cmake -S "$repo" -B "$scratch/build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release \
  -DFAIRSEM_BUILD_TESTS=OFF -DFAIRSEM_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$scratch/build" -j2 >/dev/null
(cd "$scratch/build" && cpack -G DEB) >"$scratch/cpack.log" 2>&1 || { cat "$scratch/cpack.log"; exit 1; }
deb=$(ls "$scratch"/build/fairsem_*.deb)
echo "$(basename "$deb"): $(stat -c %s "$deb") bytes"

echo "=== contents and dependencies"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$scratch/contents"
for f in /usr/bin/fairsem /usr/include/fairsem.h /usr/share/man/man1/fairsem.1 \
    "/usr/lib/$multiarch/libfairsem.so.0" "/usr/lib/$multiarch/libfairsem.a" \
    "/usr/lib/$multiarch/pkgconfig/fairsem.pc" "/usr/lib/$multiarch/cmake/fairsem/fairsemConfig.cmake"; do
  grep -qx "$f" "$scratch/contents" || { echo "the package lacks $f" >&2; exit 1; }
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
[[ "$depends" == *libc6* ]]
[[ "$depends" == *libmicrohttpd* ]]
[[ "$depends" != *urcu* ]]
grep -v '/$' "$scratch/contents" >"$scratch/files"
if grep -q "installed" <<<"$(dpkg-query -W -f='${Status}' fairsem 2>/dev/null)"; then
  echo "install_deb: a fairsem package is installed already; not touching it" >&2; exit 1
fi
while read -r f; do
  if [ -e "$f" ] || [ -L "$f" ]; then
    echo "install_deb: $f exists already; not overwriting it" >&2; exit 1
  fi
done <"$scratch/files"

echo "=== dpkg -i"
installed_by_us=1
dpkg_locked -i "$deb"

echo "=== fairsem from PATH"
[ "$(command -v fairsem)" = /usr/bin/fairsem ]
[ "$(env -u LD_LIBRARY_PATH fairsem --version)" = "fairsem $(dpkg-deb -f "$deb" Version)" ]
env -u LD_LIBRARY_PATH fairsem create "$name" --slots 2
grep -q "${name#/}" <<<"$(fairsem list)"
fairsem rm "$name"

echo "=== a consumer built with pkg-config"
# shellcheck disable=SC2046
cc "$repo/tests/install/consumer.c" $(pkg-config --cflags --libs fairsem) -o "$scratch/pc_consumer"
env -u LD_LIBRARY_PATH "$scratch/pc_consumer"

echo "=== a consumer built with find_package"
cmake -S "$repo/tests/install" -B "$scratch/consumer" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
env -u LD_LIBRARY_PATH "$scratch/consumer/consumer_shared"
"$scratch/consumer/consumer_static"

echo "=== dpkg -r leaves the system clean"
dpkg_locked -r fairsem
installed_by_us=0
if grep -q " installed" <<<"$(dpkg-query -W -f='${Status}' fairsem 2>/dev/null)"; then
  echo "fairsem is still installed" >&2; exit 1
fi
while read -r f; do
  if [ -e "$f" ] || [ -L "$f" ]; then echo "dpkg -r left $f" >&2; exit 1; fi
done <"$scratch/files"
if grep -q libfairsem <<<"$(ldconfig -p)"; then echo "ld.so.cache still lists libfairsem" >&2; exit 1; fi
echo "install_deb: ok"
