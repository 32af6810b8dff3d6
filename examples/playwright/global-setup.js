'use strict';
// Runs once per `playwright test`, before any worker: the local site, one
// shared Chromium, and the pool of tabs, created or opened: another run (or
// any other process) may be using the same pool right now, and they must
// all share its limit, so this never removes a pool before using it.  What
// the workers need travels in process.env, which Playwright passes on to
// them.  The returned function is the teardown: it removes the pool's name
// only if no other process is attached (fairsem refuses otherwise).
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const { FairShareSemaphore } = require('fairsem');
const { startServer } = require('./lib/server');
const { launchOptions } = require('./lib/browser');
const { openTabLog } = require('./lib/tablog');

module.exports = async function globalSetup() {
  const poolName = process.env.FAIRSEM_POOL || `/pw-tabs-${process.pid}`;
  const poolSize = Number(process.env.FAIRSEM_POOL_SIZE || 4);
  const logFile = process.env.FAIRSEM_TABS_LOG || path.resolve(__dirname, 'test-results', 'tabs.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  if (!process.env.FAIRSEM_TABS_LOG) fs.rmSync(logFile, { force: true });

  const site = await startServer({ delayMs: Number(process.env.PAGE_DELAY_MS || 150) });
  const browserServer = await chromium.launchServer({ ...launchOptions, host: '127.0.0.1' });
  // A pool with other settings (say a different size) is refused with
  // FAIRSEM_SETTINGS_MISMATCH rather than replaced.
  const pool = await FairShareSemaphore.open({ name: poolName, maxSlots: poolSize, create: true });
  const log = openTabLog(logFile, { run: process.env.FAIRSEM_RUN_ID ?? '' });
  log.write('setup', { pool: poolName, inode: fs.statSync(`/dev/shm${poolName}`).ino });

  process.env.BASE_URL = site.url;
  process.env.PW_WS_ENDPOINT = browserServer.wsEndpoint();
  process.env.FAIRSEM_POOL = poolName;
  process.env.FAIRSEM_POOL_SIZE = String(poolSize);
  process.env.FAIRSEM_TABS_LOG = logFile;
  console.log(`[setup] site ${site.url}, chromium ${launchOptions.executablePath}, ` +
    `pool ${poolName} (${poolSize} tabs), log ${logFile}`);

  return async () => {
    const st = pool.stats();
    pool.close();
    let removed = false;
    try {
      removed = FairShareSemaphore.unlink(poolName);
    } catch (err) {
      if (err.code !== 'FAIRSEM_IN_USE') throw err; // others still use it: the last one out removes it
    }
    log.write('teardown', { pool: poolName, removed });
    log.close();
    console.log(`[teardown] pool ${poolName}: ${st.slotsInUse} in use, ${st.waiters} waiting, ` +
      `${removed ? 'removed' : 'kept (other processes attached)'}; ${site.served()} pages served`);
    await browserServer.close();
    await site.close();
  };
};
