'use strict';
// Each test browses a few pages of the local site at once, each page in a
// tab taken from the shared pool.  Both projects (tenants) run these tests.
const { test, expect } = require('./fixtures');

const TESTS = Number(process.env.PAGES_TESTS || 8);
const PAGES_PER_TEST = Number(process.env.PAGES_PER_TEST || 3);

for (let n = 0; n < TESTS; n++) {
  test(`browse pages ${n * 10}..${n * 10 + PAGES_PER_TEST - 1}`, async ({ tabs }) => {
    const pages = Array.from({ length: PAGES_PER_TEST }, (_, k) => n * 10 + k);
    const titles = await Promise.all(pages.map((p) => tabs.open(async (page, slot) => {
      expect(slot.index).toBeGreaterThanOrEqual(0);
      await page.goto(`${process.env.BASE_URL}/page/${p}`);
      await expect(page.locator('#heading')).toHaveText(`Page ${p}`);
      await page.click('#next');
      await expect(page).toHaveTitle(`Page ${p + 1}`);
      return page.title();
    })));
    expect(titles).toEqual(pages.map((p) => `Page ${p + 1}`));
  });
}
