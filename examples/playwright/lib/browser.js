'use strict';
// How the examples launch Chromium: Debian's /usr/bin/chromium (no browser
// download), headless, with nothing that reaches the network on its own.
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const launchOptions = { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true };

module.exports = { CHROMIUM, CHROMIUM_ARGS, launchOptions };
