// @ts-check
// Two test projects, two fairsem tenants, one machine-wide pool of tabs.
//
// globalSetup starts the local site, one Chromium (Debian's, through
// launchServer) and the pool; every worker connects to that browser and
// opens each page under a slot of the pool, logging every acquire and
// release.  With 4 workers and tests that open several pages at once, the
// pool is saturated, and while both projects run each gets its fair share.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: './tests',
  globalSetup: require.resolve('./global-setup.js'),
  workers: 4,
  fullyParallel: true,
  retries: 0,
  timeout: 60_000,
  reporter: [['list']],
  outputDir: process.env.PW_OUTPUT_DIR || 'test-results',
  projects: [
    { name: 'tenant-a', use: { tenantId: 'tenant-a' } },
    { name: 'tenant-b', use: { tenantId: 'tenant-b' } },
  ],
});
