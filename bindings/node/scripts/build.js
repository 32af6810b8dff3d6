#!/usr/bin/env node
// Build the addon: node-gyp rebuild, compiling libfairsem from the sources
// the package carries (see binding.gyp).  It is the package's install
// script, so `npm install fairsem-<version>.tgz` builds it where it lands;
// `npm run build` runs it in a checkout (after refreshing csrc/ there).
//
// Nothing is downloaded when the Node headers are installed: the header
// directory is $npm_config_nodedir, else $NODE_GYP_NODEDIR, else /usr or the
// running node's prefix when they hold include/node/node_api.h (Debian's
// nodejs / libnode-dev).  Otherwise node-gyp fetches the headers itself.
// Needs a C compiler, make, python3 and liburcu's headers (liburcu-dev).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./libfairsem.js');

const here = path.resolve(__dirname, '..');

function nodeGyp() {
  // node-gyp on PATH (npm puts its own there for install scripts), else the
  // copy bundled with npm.
  try {
    const found = execFileSync('sh', ['-c', 'command -v node-gyp'], { encoding: 'utf8' }).trim();
    if (found) return [found];
  } catch {}
  const candidates = [];
  try {
    const npm = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
    candidates.push(path.join(path.dirname(npm), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  } catch {}
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm',
    'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const c of candidates) if (fs.existsSync(c)) return [process.execPath, c];
  throw new Error('node-gyp not found (install npm, which bundles it)');
}

function nodeDir() {
  const given = process.env.npm_config_nodedir || process.env.NODE_GYP_NODEDIR;
  if (given) return path.resolve(given);
  for (const dir of ['/usr', path.join(path.dirname(process.execPath), '..')]) {
    if (fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return path.resolve(dir);
  }
  return null;
}

function checkUrcu() {
  const cc = process.env.CC || 'cc';
  const flags = lib.urcuIncludes().map((d) => `-I${d}`);
  const probe = spawnSync('sh', ['-c', `${cc} "$@" -E -x c -o /dev/null -`, 'cc', ...flags], {
    input: '#define _LGPL_SOURCE 1\n#include <urcu/wfcqueue.h>\n', encoding: 'utf8',
  });
  if (probe.status !== 0) {
    console.error('fairsem: liburcu\'s headers are missing (urcu/wfcqueue.h does not compile with ' +
      `${cc}): install them (Debian/Ubuntu: apt-get install liburcu-dev; Fedora: ` +
      'userspace-rcu-devel). They are needed to build only, nothing of liburcu at run time.\n' +
      (probe.stderr || probe.error || ''));
    process.exit(1);
  }
}

lib.copy();
checkUrcu();
const [cmd, ...pre] = nodeGyp();
const dir = nodeDir();
const args = [...pre, 'rebuild', '--jobs=2', ...(dir ? [`--nodedir=${dir}`] : [])];
console.log(`fairsem: ${cmd} ${args.join(' ')}`);
const r = spawnSync(cmd, args, { cwd: here, stdio: 'inherit' });
process.exit(r.status ?? 1);
