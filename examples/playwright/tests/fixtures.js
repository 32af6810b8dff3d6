'use strict';
// Fixtures: Playwright's own `page`, taken under a slot of the machine-wide
// pool for the test's tenant.  Tests use `page` as usual; the tab it is
// exists only while the test holds a slot.  Every tab asked for, granted
// and given back is logged (lib/tablog.js).
const { test: base, expect } = require('@playwright/test');
const { FairShareSemaphore } = require('fairsem');
const { openTabLog } = require('../lib/tablog');

const test = base.extend({
  // The test's tenant: the spec files set it per test (test.use), so tests
  // of every tenant share the workers and run interleaved.
  tenantId: ['tenant-a', { option: true }],

  // Every worker connects to the one Chromium global-setup.js launched,
  // instead of launching its own.
  browser: [async ({ playwright }, use) => {
    const browser = await playwright.chromium.connect(process.env.PW_WS_ENDPOINT);
    await use(browser);
    await browser.close();
  }, { scope: 'worker' }],

  // One handle on the pool per worker process.
  pool: [async ({}, use) => {
    const sem = await FairShareSemaphore.open({ name: process.env.FAIRSEM_POOL });
    await use(sem);
    sem.close();
  }, { scope: 'worker' }],

  // This worker's registration of each tenant it has run tests for.  An idle
  // registration counts for nobody's share, so they may stay until the end.
  tenantFor: [async ({ pool }, use) => {
    const registrations = new Map();
    await use((id) => {
      if (!registrations.has(id)) registrations.set(id, pool.tenant(id));
      return registrations.get(id);
    });
    for (const tenant of registrations.values()) await tenant[Symbol.asyncDispose]();
  }, { scope: 'worker' }],

  tabLog: [async ({}, use) => {
    const log = openTabLog(process.env.FAIRSEM_TABS_LOG, { run: process.env.FAIRSEM_RUN_ID ?? '' });
    await use(log);
    log.close();
  }, { scope: 'worker' }],

  // The built-in page, opened only once the test's tenant holds a slot (a
  // fair turn, across every worker and every run on the pool) and closed
  // before the slot goes back.
  page: async ({ context, tenantId, tenantFor, tabLog }, use, testInfo) => {
    const fields = {
      tenant: tenantId, worker: testInfo.workerIndex, parallel: testInfo.parallelIndex, test: testInfo.title,
    };
    tabLog.write('request', fields);
    await tenantFor(tenantId).withSlot(async (slot) => {
      tabLog.write('grant', { ...fields, index: slot.index });
      try {
        const page = await context.newPage();
        await use(page);
        await page.close();
      } finally {
        tabLog.write('release', { ...fields, index: slot.index });
      }
    }, { timeoutMs: 120_000 });
  },
});

module.exports = { test, expect };
