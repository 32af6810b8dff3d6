#!/usr/bin/env node
// Build the addon offline: node-gyp rebuild against the installed Node
// headers (--nodedir, default /usr: Debian's nodejs-dev puts them in
// /usr/include/node), linking libfairsem.a from the CMake build directory
// (scripts/libfairsem.js says which).  Nothing is downloaded.
//
//   node scripts/build.js            # FAIRSEM_BUILD_DIR=... NODE_GYP_NODEDIR=... optional
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./libfairsem.js');

const here = path.resolve(__dirname, '..');

function nodeGyp() {
  // node-gyp on PATH, else the one bundled with npm.
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
  if (process.env.NODE_GYP_NODEDIR) return process.env.NODE_GYP_NODEDIR;
  for (const dir of ['/usr', path.join(path.dirname(process.execPath), '..')]) {
    if (fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return path.resolve(dir);
  }
  throw new Error('Node headers not found (apt-get install nodejs-dev / libnode-dev, or set NODE_GYP_NODEDIR)');
}

const archive = lib.archive();
if (!fs.existsSync(archive)) {
  console.error(`fairsem: ${archive} is missing: build the C library first ` +
    `(cmake -S ${lib.repoRoot} -B ${lib.buildDir()} && cmake --build ${lib.buildDir()} -j2) ` +
    'or set FAIRSEM_BUILD_DIR');
  process.exit(1);
}
const [cmd, ...pre] = nodeGyp();
const args = [...pre, 'rebuild', `--nodedir=${nodeDir()}`, '--jobs=2'];
console.log(`fairsem: ${cmd} ${args.join(' ')}  (libfairsem: ${archive})`);
const r = spawnSync(cmd, args, {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, npm_config_offline: 'true' },
});
process.exit(r.status ?? 1);
