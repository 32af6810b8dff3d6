'use strict';
// Plain Playwright tests using `page`; each runs for a tenant, and the
// tenants' tests are declared alternately, so with fullyParallel the workers
// take them interleaved: both tenants want tabs at the same time all along.
const { test, expect } = require('./fixtures');

const TESTS = Number(process.env.PAGES_TESTS || 10); // per tenant
const TENANTS = ['tenant-a', 'tenant-b'];

for (let n = 0; n < TESTS; n++) {
  for (const tenantId of TENANTS) {
    test.describe(tenantId, () => {
      test.use({ tenantId });
      test(`browse page ${n}`, async ({ page }) => {
        await page.goto(`${process.env.BASE_URL}/page/${n}`);
        await expect(page.locator('#heading')).toHaveText(`Page ${n}`);
        await page.click('#next');
        await expect(page).toHaveTitle(`Page ${n + 1}`);
      });
    });
  }
}
