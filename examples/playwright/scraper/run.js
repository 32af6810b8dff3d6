#!/usr/bin/env node
'use strict';
// Two (or more) scraper processes share one pool of browser tabs fairly.
//
// Starts the local site, one Chromium (Debian's) and a fairsem pool of
// tabs, then forks one scraper process per customer: customer-a with many
// URLs, customer-b with fewer, a little later.  Each asks for a tab for all
// its URLs at once; the pool gives each customer its fair share of the tabs
// and the rest wait.  Prints the timeline of every tab asked for, taken and
// given back, with what each customer holds and how many of its requests
// wait, then a summary (each customer's tabs while both waited); exits
// non-zero if the pool limit was ever exceeded or a scrape failed.
//
//   node scraper/run.js [--tabs 4] [--customers a:16:0,b:8:800]   (name:urls:start delay ms)
const { fork } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { chromium } = require('playwright-core');
const { FairShareSemaphore } = require('fairsem');
const { startServer } = require('../lib/server');
const { launchOptions } = require('../lib/browser');
const { analyse } = require('../lib/tablog');

const { values } = parseArgs({
  options: {
    tabs: { type: 'string', default: '4' },
    customers: { type: 'string', default: 'a:16:0,b:8:800' },
    delay: { type: 'string', default: '200' },
  },
});
const TABS = Number(values.tabs);
const customers = values.customers.split(',').map((spec, i) => {
  const [name, count, start] = spec.split(':');
  return { tenant: `customer-${name}`, count: Number(count), start: Number(start || 0), first: i * 100 };
});

async function main() {
  const site = await startServer({ delayMs: Number(values.delay) });
  const browserServer = await chromium.launchServer({ ...launchOptions, host: '127.0.0.1' });
  const poolName = `/scraper-tabs-${process.pid}`;
  const pool = await FairShareSemaphore.open({ name: poolName, maxSlots: TABS, create: true });
  const events = [];
  const t0 = performance.timeOrigin + performance.now();
  console.log(`site ${site.url}, ${TABS} tabs in pool ${poolName}, ` +
    customers.map((c) => `${c.tenant}: ${c.count} URLs from +${c.start} ms`).join(', '));
  try {
    const runs = customers.map((c) => new Promise((resolve, reject) => setTimeout(() => {
      const urls = Array.from({ length: c.count }, (_, k) => `${site.url}/page/${c.first + k}`);
      const child = fork(path.join(__dirname, 'scrape.js'), {
        env: {
          ...process.env,
          SCRAPE_POOL: poolName,
          SCRAPE_TENANT: c.tenant,
          SCRAPE_URLS: JSON.stringify(urls),
          PW_WS_ENDPOINT: browserServer.wsEndpoint(),
        },
      });
      child.on('message', (m) => events.push(m));
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${c.tenant} exited ${code}`))));
    }, c.start)));
    await Promise.all(runs);
  } finally {
    pool.close();
    FairShareSemaphore.unlink(poolName);
    await browserServer.close();
    await site.close();
  }

  // The timeline, in time order: per customer, tabs held and requests waiting.
  events.sort((x, y) => x.t - y.t);
  const held = new Map();
  const waiting = new Map();
  const add = (m, tenant, d) => m.set(tenant, (m.get(tenant) ?? 0) + d);
  let inUse = 0;
  let max = 0;
  const width = Math.max(...customers.map((c) => c.tenant.length), 'held+waiting'.length);
  console.log(`\n    time  ${'tenant'.padEnd(width)}  event    tab  in use  ` +
    customers.map((c) => c.tenant.padStart(width)).join(' '));
  console.log(`${' '.repeat(9)}  ${' '.repeat(width)}  ${' '.repeat(20)}  ` +
    customers.map(() => 'held+waiting'.padStart(width)).join(' '));
  for (const e of events) {
    if (e.event === 'done') continue;
    if (e.event === 'request') add(waiting, e.tenant, 1);
    if (e.event === 'grant') {
      add(waiting, e.tenant, -1);
      add(held, e.tenant, 1);
      inUse++;
    }
    if (e.event === 'release') {
      add(held, e.tenant, -1);
      inUse--;
    }
    max = Math.max(max, inUse);
    const cols = customers.map((c) => {
      const w = waiting.get(c.tenant) ?? 0;
      return `${String(held.get(c.tenant) ?? 0).padStart(2)} ${(w ? '+' + w : '').padEnd(3)}`.padStart(width);
    }).join(' ');
    console.log(`${('+' + ((e.t - t0) / 1000).toFixed(3) + 's').padStart(9)}  ${e.tenant.padEnd(width)}  ` +
      `${e.event.padEnd(7)}  ${String(e.index ?? '').padStart(3)}  ${String(inUse).padStart(6)}  ${cols}`);
  }
  console.log('');
  for (const c of customers) {
    const mine = events.filter((e) => e.tenant === c.tenant);
    const done = mine.find((e) => e.event === 'done');
    const first = mine.find((e) => e.event === 'grant');
    console.log(`${c.tenant}: ${done ? done.pages : 0}/${c.count} pages, first tab at ` +
      `+${first ? ((first.t - t0) / 1000).toFixed(3) : '?'}s, last at +${done ? ((done.t - t0) / 1000).toFixed(3) : '?'}s`);
  }
  const fair = analyse(events, TABS).contested;
  console.log(`while every customer waited (${fair.seconds}s): mean tabs held ${JSON.stringify(fair.meanHeld)}, ` +
    `fair share ${fair.share}`);
  console.log(`max concurrent tabs: ${max} (pool ${TABS})`);
  if (max > TABS) throw new Error(`pool limit exceeded: ${max} > ${TABS}`);
  const pages = events.filter((e) => e.event === 'done').reduce((n, e) => n + e.pages, 0);
  if (pages !== customers.reduce((n, c) => n + c.count, 0)) throw new Error('some pages were not scraped');
}

main().catch((err) => {
  console.error(err.stack || err);
  process.exit(1);
});
