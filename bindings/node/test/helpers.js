'use strict';
// Shared by the tests: unique pool names (unlinked after each test), waiting.
const { FairShareSemaphore } = require('..');

let counter = 0;

/** A pool name no other test (nor a parallel run) uses. */
function uniqueName(tag) {
  counter += 1;
  return `/fairsem-node-${tag}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

/**
 * Open a fresh named pool for one test; the test context closes and unlinks
 * it afterwards, whatever happens.
 */
async function freshPool(t, tag, options) {
  const name = uniqueName(tag);
  const sem = await FairShareSemaphore.open({ name, create: true, ...options });
  t.after(() => {
    sem.close();
    FairShareSemaphore.unlink(name, { force: true });
  });
  return sem;
}

/** A full garbage collection, so tests also run with weakly held state collected. */
const forceGc = (() => {
  require('node:v8').setFlagsFromString('--expose-gc');
  const gc = require('node:vm').runInNewContext('gc');
  return () => gc();
})();

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long a test waits for something that must happen: a busy machine is
 * slow, not wrong, so this only bounds how long a broken test takes to fail. */
const PATIENCE_MS = 60000;

/** Poll `predicate` until it is true, failing after `timeoutMs`. */
async function until(predicate, { timeoutMs = PATIENCE_MS, what = 'condition' } = {}) {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await delay(2);
  }
}

/** Settles of a promise, observed without awaiting it. */
function track(promise) {
  const state = { settled: false, value: undefined, error: undefined };
  state.promise = promise.then(
    (value) => { state.settled = true; state.value = value; return value; },
    (error) => { state.settled = true; state.error = error; },
  );
  return state;
}

module.exports = { forceGc, uniqueName, freshPool, delay, until, track, PATIENCE_MS };
