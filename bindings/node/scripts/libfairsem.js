#!/usr/bin/env node
// The C library's sources, which the package carries and compiles into the
// addon, for binding.gyp and the build script.
//
//   node scripts/libfairsem.js copy      refresh csrc/ from the repository (in a checkout)
//   node scripts/libfairsem.js sources   the library's .c files, relative to the package
//   node scripts/libfairsem.js include   include directories: fairsem.h's, then liburcu's
//
// csrc/ holds the repository's src/ and include/: `npm pack` copies them there
// (prepack), and so does every build in a checkout, so an installed package
// and a checkout build the same way, from csrc/.  liburcu is not carried: its
// headers (Debian: liburcu-dev) are needed to build, nothing of it at run time.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const packageDir = path.resolve(__dirname, '..');
const carried = path.join(packageDir, 'csrc');
const repoRoot = path.resolve(packageDir, '..', '..');

/** True when this package is bindings/node of a fairsem checkout. */
function inCheckout() {
  return fs.existsSync(path.join(repoRoot, 'include', 'fairsem.h')) &&
    fs.existsSync(path.join(repoRoot, 'src', 'sem.c')) &&
    path.join(repoRoot, 'bindings', 'node') === packageDir;
}

function copy() {
  if (!inCheckout()) {
    if (!fs.existsSync(path.join(carried, 'include', 'fairsem.h'))) {
      throw new Error(`fairsem: ${carried} is missing: this package was packed without the C ` +
        'sources (pack it with `npm pack` in bindings/node of a fairsem checkout)');
    }
    return;
  }
  fs.rmSync(carried, { recursive: true, force: true });
  for (const [part, pattern] of [['src', /\.[ch]$/], ['include', /\.h$/]]) {
    const from = path.join(repoRoot, part);
    const to = path.join(carried, part);
    fs.mkdirSync(to, { recursive: true });
    for (const name of fs.readdirSync(from).filter((n) => pattern.test(n)).sort()) {
      fs.copyFileSync(path.join(from, name), path.join(to, name));
    }
  }
}

function sources() {
  const dir = path.join(carried, 'src');
  return fs.readdirSync(dir).filter((n) => n.endsWith('.c')).sort().map((n) => `csrc/src/${n}`);
}

/** liburcu's include directories from pkg-config (none when they are the default). */
function urcuIncludes() {
  try {
    return execFileSync('pkg-config', ['--cflags-only-I', 'liburcu-cds'], { encoding: 'utf8' })
      .split(/\s+/).filter(Boolean).map((f) => f.replace(/^-I/, ''));
  } catch {
    return [];
  }
}

function includes() {
  return [path.join(carried, 'include'), ...urcuIncludes()];
}

module.exports = { copy, sources, includes, urcuIncludes, inCheckout };

if (require.main === module) {
  const what = process.argv[2];
  if (what === 'copy') copy();
  else if (what === 'sources') process.stdout.write(sources().join('\n') + '\n');
  else if (what === 'include') process.stdout.write(includes().join('\n') + '\n');
  else {
    console.error(`usage: ${path.basename(__filename)} copy|sources|include`);
    process.exit(2);
  }
}
