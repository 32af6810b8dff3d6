#!/usr/bin/env bash
# The Node package as a user gets it: `npm pack` of bindings/node, then
# `npm install <tarball>` in a fresh project outside the checkout, which
# builds the addon from the C sources the tarball carries (offline against
# the installed Node headers: npm_config_nodedir=/usr).  Then, from that
# project: two processes share one pool (CommonJS), the ES-module import, and
# tsc --noEmit on the package's types (typescript from the npm registry).
# Usage: install_npm.sh
set -euo pipefail
# shellcheck source=install/common.sh
. "$(dirname "$0")/install/common.sh"
make_scratch npm
unset FAIRSEM_NODE_ADDON
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
[ -f /usr/include/node/node_api.h ] && export npm_config_nodedir=/usr

echo "=== npm pack"
(cd "$repo/bindings/node" && npm pack --silent --pack-destination "$scratch") >/dev/null
tarball=$(ls "$scratch"/fairsem-*.tgz)
echo "$(basename "$tarball"): $(stat -c %s "$tarball") bytes"
tar tzf "$tarball" >"$scratch/tarball.list"
for f in package/binding.gyp package/csrc/src/sem.c package/csrc/src/layout.h \
    package/csrc/include/fairsem.h package/src/addon.c package/lib/index.mjs package/index.d.ts; do
  grep -qx "$f" "$scratch/tarball.list" || { echo "the tarball lacks $f" >&2; exit 1; }
done
if grep -q '^package/build/' "$scratch/tarball.list"; then
  echo "the tarball carries a prebuilt addon" >&2; exit 1
fi

echo "=== npm install of the tarball in a fresh project"
project="$scratch/project"
mkdir "$project"
(cd "$project" && npm init -y >/dev/null && npm install --loglevel=error "$tarball")
addon="$project/node_modules/fairsem/build/Release/fairsem.node"
[ -f "$addon" ] || { echo "npm install did not build $addon" >&2; exit 1; }
if grep -rqs "$repo" "$project/node_modules/fairsem/build/Makefile" "$project/node_modules/fairsem/build/"*.mk; then
  echo "the installed package's build refers to the checkout $repo" >&2; exit 1
fi

echo "=== two processes share one pool (CommonJS)"
cp "$here/npm_user.js" "$here/npm_esm.mjs" "$here/npm_types.mts" "$here/npm_types.cts" "$project/"
cp "$here/npm_tsconfig.json" "$project/tsconfig.json"
two_processes "$project" "$name" node npm_user.js
for who in holder waiter; do
  grep -qx "module $project/node_modules/fairsem/lib/index.js" "$project/$who.out"
done
(cd "$project" && node -e "require('fairsem').FairShareSemaphore.unlink('$name', { missingOk: false })")
[ ! -e "/dev/shm/${name#/}" ]

echo "=== ES-module import"
(cd "$project" && node npm_esm.mjs)

echo "=== tsc --noEmit on the package's types"
(cd "$project" && npm install --loglevel=error --save-dev typescript@~5.6.3 @types/node@^20.17.0 &&
  npx --no-install tsc -p tsconfig.json)
echo "install_npm: ok"
