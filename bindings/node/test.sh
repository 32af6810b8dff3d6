#!/usr/bin/env bash
# The Node.js binding's whole check, from any directory, non-interactive:
#   1. installs what is missing (Debian, as root): a C toolchain,
#      liburcu, Node + npm + headers, and Chromium (/usr/bin/chromium);
#   2. npm ci in bindings/node and examples/playwright (browser download
#      skipped), builds the addon offline (node-gyp --nodedir), compiling
#      libfairsem from the repository's sources into it (binding.gyp);
#   3. runs the binding's tests (node --test), the READMEs' Node snippets
#      as written, the tab-log checks (examples/playwright/lib), the
#      Playwright Test project against the real Chromium
#      (examples/playwright/e2e-check.js), two Playwright runs at once on
#      one pool (examples/playwright/concurrent-check.js) and the scraper
#      example.
# Exits non-zero on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
examples="$repo/examples/playwright"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export DEBIAN_FRONTEND=noninteractive
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step() { printf '\n=== %s\n' "$*"; }
trap 'echo "bindings/node/test.sh: FAILED (line $LINENO)" >&2' ERR

# ------------------------------------------------------------------ 1. tools
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v make >/dev/null || missing+=(make)
command -v python3 >/dev/null || missing+=(python3)        # node-gyp runs gyp with it
command -v pkg-config >/dev/null || missing+=(pkg-config)
if ! pkg-config --exists liburcu-cds 2>/dev/null; then missing+=(liburcu-dev); fi
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
node_headers() {
  local d
  for d in /usr "$(dirname "$(readlink -f "$(command -v node)")")/.."; do
    [ -f "$d/include/node/node_api.h" ] && { (cd "$d" && pwd); return 0; }
  done
  return 1
}
if command -v node >/dev/null && ! node_headers >/dev/null; then missing+=(libnode-dev); fi
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${missing[*]} and not root: install them first" >&2
    exit 1
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if ! node_headers >/dev/null; then apt-get install -y -q --no-install-recommends libnode-dev; fi
fi
NODE_GYP_NODEDIR="$(node_headers)"
export NODE_GYP_NODEDIR
echo "node $(node --version), npm $(npm --version), headers in $NODE_GYP_NODEDIR/include/node"
/usr/bin/chromium --version 2>/dev/null || true

# ------------------------------------------------------------------ 2. packages, addon
step "npm ci (bindings/node)"
# --ignore-scripts: the package's own install script (the addon build) runs
# next, on its own, so its output is visible.
(cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
step "building the addon offline"
(cd "$here" && node scripts/build.js)
step "npm ci (examples/playwright)"
(cd "$examples" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# ------------------------------------------------------------------ 3. tests
step "node --test (bindings/node/test)"
(cd "$here" && timeout 240 node --test --test-timeout=120000 test/*.test.js)

step "the READMEs' Node snippets, as written (bindings/node/test/readme-snippets.js)"
(cd "$here" && timeout 300 node test/readme-snippets.js)

step "the tab-log checks on fair and unfair logs (examples/playwright/lib)"
(cd "$examples" && timeout 60 node --test lib/)

step "Playwright Test against the real Chromium (examples/playwright/e2e-check.js)"
(cd "$examples" && timeout 400 node e2e-check.js)

step "two Playwright runs at once on one pool (examples/playwright/concurrent-check.js)"
(cd "$examples" && timeout 600 node concurrent-check.js)

step "scraper example (examples/playwright/scraper/run.js)"
(cd "$examples" && timeout 180 node scraper/run.js --tabs 4 --customers a:12:0,b:6:500 | tail -n 6)

step "bindings/node/test.sh: all green"
