#!/usr/bin/env node
// Where the C library is, for binding.gyp and the build script.
//
//   node scripts/libfairsem.js dir       the CMake build directory
//   node scripts/libfairsem.js archive   its libfairsem.a
//   node scripts/libfairsem.js include   the repository's include/
//
// The build directory is $FAIRSEM_BUILD_DIR (a relative path is taken from
// the repository root), else <repo>/build-node.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const repoRoot = path.resolve(__dirname, '..', '..', '..');

function buildDir() {
  const env = process.env.FAIRSEM_BUILD_DIR;
  if (env) return path.resolve(repoRoot, env);
  return path.join(repoRoot, 'build-node');
}

function archive() {
  return path.join(buildDir(), 'libfairsem.a');
}

module.exports = { repoRoot, buildDir, archive, include: () => path.join(repoRoot, 'include') };

if (require.main === module) {
  const what = process.argv[2] || 'dir';
  let out;
  if (what === 'dir') out = buildDir();
  else if (what === 'archive') {
    out = archive();
    if (!fs.existsSync(out)) {
      console.error(`fairsem: ${out} is missing; build the C library first:\n` +
        `  cmake -S ${repoRoot} -B ${buildDir()} -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build ${buildDir()} -j2\n` +
        `or set FAIRSEM_BUILD_DIR to a CMake build directory of fairsem`);
      process.exit(1);
    }
  } else if (what === 'include') out = path.join(repoRoot, 'include');
  else {
    console.error(`usage: ${path.basename(__filename)} dir|archive|include`);
    process.exit(2);
  }
  process.stdout.write(out + '\n');
}
