// @ts-check
// One project; its tests name their tenant (tests/pages.spec.js), so the
// tenants' tests are interleaved across the workers.  One machine-wide pool
// of tabs, shared by every worker and by every run that names the same pool.
//
// globalSetup starts the local site, one Chromium (Debian's, through
// launchServer) and creates or opens the pool; every worker connects to
// that browser, and every test's `page` is opened under a slot of the pool
// (tests/fixtures.js).  With more workers than tabs, both tenants wait for
// tabs at once, and each gets its fair share.
const { defineConfig } = require('@playwright/test');

module.exports = defineConfig({
  testDir: './tests',
  globalSetup: require.resolve('./global-setup.js'),
  workers: Number(process.env.PW_WORKERS || 6),
  fullyParallel: true,
  retries: 0,
  timeout: 150_000,
  reporter: [['list']],
  outputDir: process.env.PW_OUTPUT_DIR || 'test-results',
  projects: [{ name: 'pages' }],
});
