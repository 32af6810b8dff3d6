'use strict';
// index.d.ts describes the API: a TypeScript program using it compiles
// (tsc --noEmit, strict), and the declared names exist at run time.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const fairsem = require('..');

test('exports match index.d.ts', () => {
  for (const name of ['FairShareSemaphore', 'FairsemError', 'AbortError', 'Slot', 'Tenant', 'version']) {
    assert.ok(name in fairsem, name);
  }
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  for (const m of ['acquire', 'tryAcquire', 'withSlot', 'close']) {
    assert.equal(typeof fairsem.Tenant.prototype[m], 'function', m);
    assert.match(dts, new RegExp(`\\b${m}(<[^>]*>)?\\(`));
  }
  for (const m of ['tenant', 'stats', 'info', 'reap', 'close', 'isLinked']) {
    assert.equal(typeof fairsem.FairShareSemaphore.prototype[m], 'function', m);
    assert.match(dts, new RegExp(`\\b${m}\\(`));
  }
});

const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
test('a strict TypeScript program using the API compiles', { skip: !fs.existsSync(tsc) && 'typescript not installed (npm ci)' }, () => {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
