#!/usr/bin/env node
'use strict';
// Two `playwright test` runs at once on one pool name: the machine-wide
// pool is the point, so the limit must hold across both.  Each run has its
// own site, its own Chromium and its own workers (4 each, 8 in all, on a
// pool of 4 tabs); both append to one tab log.  The second run starts once
// the first one's workers hold tabs, so its global setup meets a pool in
// use (a setup that removed and re-created it would split the runs into two
// pools, and up to 8 tabs would be open at once).  Asserts:
//   - both runs passed and used one and the same pool (same inode; the
//     second run opened what the first created, nothing was removed and
//     created again in between);
//   - the runs overlapped: there were moments when both runs held tabs;
//   - the pool limit held across both: the most tabs open at once, counted
//     over both runs' events, never exceeded the pool size (and reached it);
//   - each tenant's share whenever both waited, across both runs
//     (lib/tablog.js; how long both waited depends on how long the runs
//     overlap, so here it is not required to be long: e2e-check.js is);
//   - the first run to finish left the pool to the other (its teardown found
//     it in use), and the last one removed it.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { readTabLog, analyse } = require('./lib/tablog');
const { runPlaywright, checker, checkPool } = require('./lib/runs');

const POOL_SIZE = Number(process.env.FAIRSEM_POOL_SIZE || 4);
const WORKERS_PER_RUN = Number(process.env.PW_WORKERS || 4);
const RUNS = ['run1', 'run2'];

/** Resolves to true once predicate() holds (polled every 50 ms). */
function until(predicate) {
  return new Promise((resolve) => {
    const look = () => (predicate() ? resolve(true) : setTimeout(look, 50));
    look();
  });
}

/** The log events at which every run held at least one tab. */
function overlap(events) {
  const held = new Map(RUNS.map((r) => [r, 0]));
  let both = 0;
  for (const e of events) {
    if (e.event === 'grant') held.set(e.run, held.get(e.run) + 1);
    if (e.event === 'release') held.set(e.run, held.get(e.run) - 1);
    if (RUNS.every((r) => held.get(r) > 0)) both++;
  }
  return both;
}

async function main() {
  const poolName = `/pw-shared-${process.pid}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairsem-pw2-'));
  const logFile = path.join(tmp, 'tabs.log');
  const started = Date.now();
  const start = (run) => runPlaywright({
    tag: `[${run}] `,
    env: {
      FAIRSEM_POOL: poolName,
      FAIRSEM_POOL_SIZE: String(POOL_SIZE),
      FAIRSEM_TABS_LOG: logFile,
      FAIRSEM_RUN_ID: run,
      PW_WORKERS: String(WORKERS_PER_RUN),
      PAGE_DELAY_MS: process.env.PAGE_DELAY_MS || '600',
      PAGES_TESTS: process.env.PAGES_TESTS || '12',
      PW_OUTPUT_DIR: path.join(tmp, run),
    },
  });
  const first = start(RUNS[0]);
  const holding = await Promise.race([
    until(() => fs.existsSync(logFile) && readTabLog(logFile).some((e) => e.event === 'grant')),
    first.then(() => false),
  ]);
  const statuses = await Promise.all([first, holding ? start(RUNS[1]) : 'not started']);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  const { check, finish } = checker('concurrent');
  RUNS.forEach((run, i) => check(statuses[i] === 0, `${run}: playwright test exited ${statuses[i]}`));
  const events = fs.existsSync(logFile) ? readTabLog(logFile) : [];
  const setups = events.filter((e) => e.event === 'setup');
  const inodes = new Set(setups.map((e) => e.inode));
  check(setups.length === 2 && inodes.size === 1,
    `both runs used one pool: ${setups.length} setups, inodes ${[...inodes].join(', ')}`);
  const both = overlap(events);
  check(both > 0, `the runs overlapped: both held tabs at ${both} log events`);
  const perRun = Object.fromEntries(RUNS.map((r) => [r, analyse(events.filter((e) => e.run === r), POOL_SIZE).max]));
  const a = analyse(events, POOL_SIZE);
  checkPool(check, a, POOL_SIZE);
  const teardowns = events.filter((e) => e.event === 'teardown');
  check(teardowns.length === 2 && !teardowns[0].removed && teardowns[1].removed,
    `the first run to finish kept the pool for the other, the last removed it: ` +
    teardowns.map((e) => `${e.run} ${e.removed ? 'removed' : 'kept'}`).join(', '));
  check(!fs.existsSync(`/dev/shm${poolName}`), `pool ${poolName} gone afterwards`);

  console.log(`\ntwo runs x ${WORKERS_PER_RUN} workers on one pool of ${POOL_SIZE}: max tabs open at once ` +
    `${a.max} (per run ${JSON.stringify(perRun)}), pages ${a.pages}, ${seconds}s`);
  fs.rmSync(tmp, { recursive: true, force: true });
  finish();
}

main().catch((err) => {
  console.error(err.stack || err);
  process.exit(1);
});
