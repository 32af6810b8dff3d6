'use strict';
// Fixtures: every page a test opens is a tab of the one shared browser,
// taken under a slot of the machine-wide pool, for the project's tenant.
const { test: base, expect } = require('@playwright/test');
const { chromium } = require('playwright-core');
const { FairShareSemaphore } = require('fairsem');
const { openTabLog } = require('../lib/tablog');

const test = base.extend({
  // The project's tenant (playwright.config.js sets it per project).
  tenantId: ['tenant-a', { option: true, scope: 'worker' }],

  // One handle on the pool per worker process.
  pool: [async ({}, use) => {
    const sem = await FairShareSemaphore.open({ name: process.env.FAIRSEM_POOL });
    await use(sem);
    sem.close();
  }, { scope: 'worker' }],

  // This worker's registration of the project's tenant.
  tenant: [async ({ pool, tenantId }, use) => {
    const tenant = pool.tenant(tenantId);
    try {
      await use(tenant);
    } finally {
      await tenant[Symbol.asyncDispose]();
    }
  }, { scope: 'worker' }],

  sharedBrowser: [async ({}, use) => {
    const browser = await chromium.connect(process.env.PW_WS_ENDPOINT);
    await use(browser);
    await browser.close();
  }, { scope: 'worker' }],

  tabLog: [async ({}, use) => {
    const log = openTabLog(process.env.FAIRSEM_TABS_LOG);
    await use(log);
    log.close();
  }, { scope: 'worker' }],

  /**
   * tabs.open(fn): wait for a slot (fairly, across every worker), open a tab
   * in the shared browser, run fn(page, slot), close the tab, give the slot
   * back.  Every acquire and release is logged.
   */
  tabs: async ({ tenant, sharedBrowser, tabLog }, use, testInfo) => {
    const fields = (slot) => ({
      tenant: tenant.id, index: slot.index, worker: testInfo.workerIndex, parallel: testInfo.parallelIndex, test: testInfo.title,
    });
    await use({
      open: (fn) => tenant.withSlot(async (slot) => {
        tabLog.write('acquire', fields(slot));
        const context = await sharedBrowser.newContext();
        try {
          const page = await context.newPage();
          return await fn(page, slot);
        } finally {
          await context.close();
          tabLog.write('release', fields(slot));
        }
      }, { timeoutMs: 50_000 }),
    });
  },
});

module.exports = { test, expect };
