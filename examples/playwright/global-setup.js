'use strict';
// Runs once, before any worker: the local site, one shared Chromium and the
// pool of tabs.  What the workers need travels in process.env, which
// Playwright passes on to them.  The returned function is the teardown.
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const { FairShareSemaphore } = require('fairsem');
const { startServer } = require('./lib/server');
const { launchOptions } = require('./lib/browser');

module.exports = async function globalSetup() {
  const poolName = process.env.FAIRSEM_POOL || `/pw-tabs-${process.pid}`;
  const poolSize = Number(process.env.FAIRSEM_POOL_SIZE || 4);
  const logFile = process.env.FAIRSEM_TABS_LOG || path.resolve(__dirname, 'test-results', 'tabs.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  if (!process.env.FAIRSEM_TABS_LOG) fs.rmSync(logFile, { force: true });

  const site = await startServer({ delayMs: Number(process.env.PAGE_DELAY_MS || 150) });
  const browserServer = await chromium.launchServer({ ...launchOptions, host: '127.0.0.1' });
  // A pool left behind by a killed run would carry its old settings: start clean.
  FairShareSemaphore.unlink(poolName);
  const pool = await FairShareSemaphore.open({ name: poolName, maxSlots: poolSize, create: true });

  process.env.BASE_URL = site.url;
  process.env.PW_WS_ENDPOINT = browserServer.wsEndpoint();
  process.env.FAIRSEM_POOL = poolName;
  process.env.FAIRSEM_POOL_SIZE = String(poolSize);
  process.env.FAIRSEM_TABS_LOG = logFile;
  console.log(`[setup] site ${site.url}, chromium ${launchOptions.executablePath}, ` +
    `pool ${poolName} (${poolSize} tabs), log ${logFile}`);

  return async () => {
    const st = pool.stats();
    console.log(`[teardown] pool ${poolName}: ${st.slotsInUse} in use, ${st.waiters} waiting; ` +
      `${site.served()} pages served`);
    pool.close();
    FairShareSemaphore.unlink(poolName);
    await browserServer.close();
    await site.close();
  };
};
