'use strict';
// The pool's and each tenant's counters in stats(), as libfairsem counts them.
const test = require('node:test');
const assert = require('node:assert/strict');
const { waitBucketBoundsNs } = require('..');
const { freshPool, until, delay, track } = require('./helpers');

const MS = 1e6;
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

test('waitBucketBoundsNs: 1-2-5 steps from 1 µs to 100 s, then Infinity', () => {
  assert.equal(waitBucketBoundsNs.length, 26);
  assert.deepEqual(waitBucketBoundsNs.slice(0, 4), [1e3, 2e3, 5e3, 1e4]);
  assert.equal(waitBucketBoundsNs[24], 100e9);
  assert.equal(waitBucketBoundsNs[25], Infinity);
  assert.ok(Object.isFrozen(waitBucketBoundsNs));
});

test('stats() counts grants, waits, timeouts and aborts, per tenant and for the pool', async (t) => {
  const sem = await freshPool(t, 'counters', { maxSlots: 1 });
  const a = sem.tenant('a');
  const b = sem.tenant('b');
  for (let i = 0; i < 3; i++) a.tryAcquire().release();
  const held = await a.acquire();
  await assert.rejects(b.acquire({ timeoutMs: 5 }), { code: 'ETIMEDOUT' });
  await assert.rejects(b.acquire({ timeoutMs: 0 }), { code: 'ETIMEDOUT' });
  const abort = new AbortController();
  const aborted = track(b.acquire({ signal: abort.signal }));
  await until(() => sem.stats().waiters === 1, { what: 'the request queued' });
  abort.abort();
  await aborted.promise;
  assert.equal(aborted.error.name, 'AbortError');

  // Node's timers may fire a little early: the bounds are measured with
  // performance.now() (CLOCK_MONOTONIC, as the library's), from when the
  // request was seen queued, which is after it queued.
  const started = performance.now();
  const waiting = track(b.acquire());
  await until(() => sem.stats().waiters === 1, { what: 'the request queued' });
  const queuedAt = performance.now();
  await delay(30);
  const queuedFor = (performance.now() - queuedAt) * MS;
  const during = sem.stats();
  assert.ok(during.oldestWaitNs >= queuedFor, `oldest wait ${during.oldestWaitNs} < ${queuedFor}`);
  const tb = during.tenants.find((x) => x.id === 'b');
  assert.equal(tb.oldestWaitNs, during.oldestWaitNs);
  assert.equal(during.tenants.find((x) => x.id === 'a').oldestWaitNs, 0);
  const releasedAt = performance.now();
  held.release();
  await waiting.promise;
  const waitedNs = (performance.now() - started) * MS;
  waiting.value.release();

  const st = sem.stats();
  const pool = st.counters;
  const ca = st.tenants.find((x) => x.id === 'a').counters;
  const cb = st.tenants.find((x) => x.id === 'b').counters;
  assert.equal(pool.grantsImmediate, 4);
  assert.equal(pool.grantsWaited, 1);
  assert.equal(pool.timeouts, 2, 'timeoutMs counts as a timeout, not a cancel');
  assert.equal(pool.cancels, 1);
  assert.equal(pool.reclaimedSlots, 0);
  assert.equal(pool.reclaimedRequests, 0);
  assert.equal(sum(pool.waitBuckets), pool.grantsWaited);
  assert.equal(pool.waitBuckets.length, 26);
  const leastNs = (releasedAt - queuedAt) * MS;
  assert.ok(pool.waitNs >= leastNs && pool.waitNs <= waitedNs, `waitNs ${pool.waitNs}`);
  assert.deepEqual([ca.grantsImmediate, ca.grantsWaited, ca.timeouts, ca.cancels], [4, 0, 0, 0]);
  assert.deepEqual([cb.grantsImmediate, cb.grantsWaited, cb.timeouts, cb.cancels], [0, 1, 2, 1]);
  assert.deepEqual(cb.waitBuckets, pool.waitBuckets);
  assert.equal(pool.heldNs, ca.heldNs + cb.heldNs);
  assert.ok(ca.heldNs >= leastNs - 10 * MS, `a held its slot ${leastNs} ns and more (less one coarse tick): heldNs ${ca.heldNs}`);
  assert.equal(st.oldestWaitNs, 0);
});
