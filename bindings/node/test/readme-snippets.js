#!/usr/bin/env node
'use strict';
// The Node snippets of the READMEs run as written: every ```js block of
// README.md and bindings/node/README.md is saved as an ES module next to a
// node_modules that holds this checkout's fairsem (and the Playwright
// example's playwright-core), and run with node; each must exit 0.  Only
// the pool name is changed, to one of this run's own, removed afterwards.
//
//   node test/readme-snippets.js     (bash bindings/node/test.sh runs it)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FairShareSemaphore } = require('..');

const repo = path.resolve(__dirname, '..', '..', '..');
const READMES = ['README.md', 'bindings/node/README.md'];
const deps = {
  fairsem: path.join(repo, 'bindings', 'node'),
  'playwright-core': path.join(repo, 'examples', 'playwright', 'node_modules', 'playwright-core'),
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fairsem-snippets-'));
fs.mkdirSync(path.join(dir, 'node_modules'));
for (const [name, target] of Object.entries(deps)) {
  if (!fs.existsSync(target)) throw new Error(`${target} is missing (npm ci in examples/playwright first)`);
  fs.symlinkSync(target, path.join(dir, 'node_modules', name));
}

let failed = 0;
let ran = 0;
for (const readme of READMES) {
  const text = fs.readFileSync(path.join(repo, readme), 'utf8');
  const blocks = [...text.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  blocks.forEach((code, i) => {
    const pool = `/readme-snippet-${process.pid}-${ran}`;
    const file = path.join(dir, `snippet-${ran}.mjs`);
    fs.writeFileSync(file, code.replaceAll("'/tabs'", `'${pool}'`));
    const run = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    const ok = run.status === 0;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${readme} snippet ${i + 1}: exit ${run.status ?? run.signal}` +
      `${run.stdout.trim() ? ' — ' + run.stdout.trim().split('\n').join(' | ') : ''}`);
    if (!ok) {
      failed++;
      console.log(run.stderr);
    }
    FairShareSemaphore.unlink(pool);
    ran++;
  });
}
fs.rmSync(dir, { recursive: true, force: true });
if (ran < READMES.length) {
  console.log(`only ${ran} snippets found in ${READMES.join(', ')}`);
  process.exit(1);
}
process.exit(failed ? 1 : 0);
