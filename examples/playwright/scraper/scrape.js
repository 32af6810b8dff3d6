'use strict';
// One scraper process: scrapes its list of URLs through the shared
// Chromium, every page in a tab taken from the machine-wide pool for its
// tenant, all URLs at once (the pool decides how many tabs it really gets).
// Reports every tab asked for, granted and given back to the parent over
// IPC (request before queueing, grant after, release before giving back).
//
//   node scraper/scrape.js  (forked by run.js, which passes its orders in env)
const { chromium } = require('playwright-core');
const { FairShareSemaphore } = require('fairsem');

const now = () => performance.timeOrigin + performance.now();

async function main() {
  const { SCRAPE_POOL, SCRAPE_TENANT, SCRAPE_URLS, PW_WS_ENDPOINT } = process.env;
  const urls = JSON.parse(SCRAPE_URLS);
  const sem = await FairShareSemaphore.open({ name: SCRAPE_POOL });
  const tenant = sem.tenant(SCRAPE_TENANT);
  const browser = await chromium.connect(PW_WS_ENDPOINT);
  const report = (event, fields) => process.send({ t: now(), tenant: tenant.id, pid: process.pid, event, ...fields });
  const scrape = (url) => {
    report('request', { url });
    return tenant.withSlot(async (slot) => {
      report('grant', { index: slot.index, url });
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(url);
        return { url, title: await page.title(), heading: await page.textContent('#heading') };
      } finally {
        await context.close();
        report('release', { index: slot.index, url });
      }
    }, { timeoutMs: 60_000 });
  };
  try {
    const results = await Promise.all(urls.map(scrape));
    report('done', { pages: results.length, titles: results.map((r) => r.title) });
  } finally {
    await browser.close();
    await tenant[Symbol.asyncDispose]();
    sem.close();
  }
}

main().then(() => process.disconnect(), (err) => {
  console.error(`scraper ${process.env.SCRAPE_TENANT}: ${err.stack || err}`);
  process.exit(1);
});
