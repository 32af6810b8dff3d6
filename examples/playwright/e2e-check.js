#!/usr/bin/env node
'use strict';
// End-to-end check: run the Playwright Test project (4 workers, two
// projects = two tenants) against the real Chromium, then read the tab log
// written under the slots and assert:
//   - the pool limit was never exceeded (and no tab index was handed out twice),
//   - the pool was saturated: the most tabs open at once equals the pool size,
//   - both tenants progressed concurrently (held tabs at the same moment),
//   - every tab was given back, and the pool is gone afterwards.
// Prints pages, workers and the measured maximum of concurrent tabs.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { readTabLog, analyse } = require('./lib/tablog');

const here = __dirname;
const POOL_SIZE = Number(process.env.FAIRSEM_POOL_SIZE || 4);
const WORKERS = 4; // playwright.config.js
const poolName = `/pw-e2e-${process.pid}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairsem-pw-'));
const logFile = path.join(tmp, 'tabs.log');

const cli = require.resolve('@playwright/test/cli');
const started = Date.now();
const run = spawnSync(process.execPath, [cli, 'test'], {
  cwd: here,
  stdio: 'inherit',
  env: {
    ...process.env,
    FAIRSEM_POOL: poolName,
    FAIRSEM_POOL_SIZE: String(POOL_SIZE),
    FAIRSEM_TABS_LOG: logFile,
    PW_OUTPUT_DIR: path.join(tmp, 'test-results'),
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1',
    CI: '1',
  },
  timeout: 240_000,
});
const seconds = ((Date.now() - started) / 1000).toFixed(1);

const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

check(run.status === 0, `playwright test exited ${run.status ?? run.signal ?? run.error}`);
const events = fs.existsSync(logFile) ? readTabLog(logFile) : [];
const a = analyse(events, POOL_SIZE);
const workerProcesses = new Set(events.map((e) => e.worker)).size;
const parallelWorkers = new Set(events.map((e) => e.parallel)).size;
const pids = new Set(events.map((e) => e.pid)).size;

check(events.length > 0, `tab log has ${events.length} events`);
check(a.problems.length === 0, `log consistent${a.problems.length ? ': ' + a.problems.slice(0, 5).join('; ') : ''}`);
check(a.max <= POOL_SIZE, `pool limit never exceeded: max ${a.max} <= ${POOL_SIZE}`);
check(a.max === POOL_SIZE, `saturated pool fully used: max concurrent tabs ${a.max} == pool size ${POOL_SIZE}`);
check(a.tenants.length === 2, `two tenants: ${a.tenants.join(', ')}`);
check(a.concurrentEvents > 0, `both tenants held tabs at the same time (${a.concurrentEvents} log events)`);
check(parallelWorkers === WORKERS, `${parallelWorkers} parallel workers (of ${WORKERS}) took tabs`);
let poolGone = true;
try {
  fs.accessSync(`/dev/shm${poolName}`);
  poolGone = false;
} catch {}
check(poolGone, `pool ${poolName} unlinked by the teardown`);

console.log(`\npages: ${a.pages}, workers: ${WORKERS} in parallel (${workerProcesses} worker processes, ` +
  `${pids} pids), max concurrent tabs: ${a.max}, pool size: ${POOL_SIZE}, ` +
  `max per tenant: ${JSON.stringify(a.maxPerTenant)}, ${seconds}s`);
fs.rmSync(tmp, { recursive: true, force: true });
if (failures.length) {
  console.log(`e2e: ${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('e2e: all checks passed');
