#!/usr/bin/env node
'use strict';
// End-to-end check: run the Playwright Test project (8 workers, a pool of 4
// tabs, tests of two tenants interleaved) against the real Chromium, then
// read the tab log and assert:
//   - the pool limit held (and no tab index was handed out twice), and the
//     pool was saturated: the most tabs open at once equals the pool size;
//   - the tenants' tests ran interleaved, not one tenant after the other;
//   - fairness while both tenants waited for tabs (lib/tablog.js defines it);
//   - every tab was given back, and the pool is gone afterwards (the
//     teardown removed it, nobody else being attached).
// Prints pages, workers, the maximum of concurrent tabs and each tenant's
// tabs while both waited.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { readTabLog, analyse, interleaving } = require('./lib/tablog');
const { runPlaywright, checker, checkPool } = require('./lib/runs');

const POOL_SIZE = Number(process.env.FAIRSEM_POOL_SIZE || 4);
const WORKERS = Number(process.env.PW_WORKERS || 8);
// Pages answer slowly, so tabs stay open long against the workers' own
// overhead between tests, and the pool stays contested.
const PAGE_DELAY_MS = process.env.PAGE_DELAY_MS || '600';

async function main() {
  const poolName = `/pw-e2e-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairsem-pw-'));
  const logFile = path.join(tmp, 'tabs.log');
  const started = Date.now();
  const status = await runPlaywright({
    tag: '',
    env: {
      FAIRSEM_POOL: poolName,
      FAIRSEM_POOL_SIZE: String(POOL_SIZE),
      FAIRSEM_TABS_LOG: logFile,
      PW_WORKERS: String(WORKERS),
      PAGE_DELAY_MS,
      PW_OUTPUT_DIR: path.join(tmp, 'test-results'),
    },
  });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  const { check, finish } = checker('e2e');
  check(status === 0, `playwright test exited ${status}`);
  const events = fs.existsSync(logFile) ? readTabLog(logFile) : [];
  const a = analyse(events, POOL_SIZE);
  check(a.pages > 0, `tab log has ${a.pages} tabs`);
  checkPool(check, a, POOL_SIZE, { minHandoffs: 4 });
  const mixed = interleaving(events);
  check(mixed >= 0.5, `tenants' tests interleaved: both were asking for tabs during ${(mixed * 100).toFixed(0)}% ` +
    'of the run (want >= 50%)');
  const parallel = new Set(events.filter((e) => e.event === 'grant').map((e) => e.parallel)).size;
  check(parallel === WORKERS, `${parallel} parallel workers (of ${WORKERS}) took tabs`);
  check(!fs.existsSync(`/dev/shm${poolName}`), `pool ${poolName} removed by the teardown`);

  console.log(`\npages: ${a.pages}, workers: ${WORKERS}, max concurrent tabs: ${a.max}, pool size: ${POOL_SIZE}, ` +
    `max per tenant: ${JSON.stringify(a.maxPerTenant)}, ${seconds}s`);
  fs.rmSync(tmp, { recursive: true, force: true });
  finish();
}

main().catch((err) => {
  console.error(err.stack || err);
  process.exit(1);
});
