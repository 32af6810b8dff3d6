'use strict';
// Timeouts, and waiting without blocking the event loop or the thread pool.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs/promises');
const { freshPool, until, delay, track, PATIENCE_MS } = require('./helpers');

test('timeoutMs: ETIMEDOUT after the time, the loop running meanwhile', async (t) => {
  const sem = await freshPool(t, 'timeout', { maxSlots: 1 });
  const a = sem.tenant('a');
  const held = await a.acquire();
  const started = performance.now();
  const w = track(a.acquire({ timeoutMs: 1500 }));
  // The loop keeps running while the request waits: until() polls on timers.
  await until(() => sem.stats().waiters === 1 || w.settled, { what: 'the request queued' });
  await w.promise;
  const waited = performance.now() - started;
  const err = w.error;
  assert.ok(err instanceof Error, 'the request did not time out');
  assert.equal(err.code, 'ETIMEDOUT');
  assert.equal(err.name, 'FairsemError');
  assert.ok(waited >= 1490, `gave up after ${waited} ms, before its timeout`);
  assert.equal(sem.stats().waiters, 0);
  held.release();
});

test('timeoutMs: 0 takes a free slot, or fails at once', async (t) => {
  const sem = await freshPool(t, 'timeout0', { maxSlots: 1 });
  const a = sem.tenant('a');
  const slot = await a.acquire({ timeoutMs: 0 });
  await assert.rejects(a.acquire({ timeoutMs: 0 }), { code: 'ETIMEDOUT' });
  assert.equal(a.tryAcquire(), null);
  assert.equal(sem.stats().waiters, 0);
  slot.release();
});

test('a grant in time resolves before the timeout', async (t) => {
  const sem = await freshPool(t, 'timeoutok', { maxSlots: 1 });
  const a = sem.tenant('a');
  const held = await a.acquire();
  setTimeout(() => held.release(), 20);
  const slot = await a.acquire({ timeoutMs: PATIENCE_MS });
  assert.equal(slot.index, 0);
  slot.release();
});

test('timeouts racing grants leak nothing', async (t) => {
  const sem = await freshPool(t, 'timeoutrace', { maxSlots: 1 });
  const a = sem.tenant('a');
  let won = 0;
  for (let i = 0; i < 150; i++) {
    const held = await a.acquire();
    const w = track(a.acquire({ timeoutMs: 1 }));
    let released;
    if (i % 2) released = held.release();
    else released = new Promise((resolve) => setTimeout(() => resolve(held.release()), 1));
    await Promise.all([w.promise, released]);
    if (!w.error) {
      won++;
      w.value.release();
    } else {
      assert.equal(w.error.code, 'ETIMEDOUT');
    }
    const st = sem.stats();
    assert.equal(st.slotsInUse, 0, `round ${i}`);
    assert.equal(st.waiters, 0, `round ${i}`);
  }
  t.diagnostic(`grants won ${won} of 150 races`);
});

test('1000 waiters use no thread-pool thread and do not stall the loop', async (t) => {
  const sem = await freshPool(t, 'many', { maxSlots: 2, maxWaiters: 2000 });
  const a = sem.tenant('a');
  const b = sem.tenant('b');
  const held = [await a.acquire(), await b.acquire()];
  const waits = [];
  for (let i = 0; i < 500; i++) waits.push(track(a.acquire()), track(b.acquire()));
  await until(() => sem.stats().waiters === 1000);
  // The libuv thread pool (4 threads by default) is free: file reads work.
  // (A blocked pool would never finish them: until() gives up.)
  let read = 0;
  for (let i = 0; i < 8; i++) fs.readFile(__filename).then(() => read++);
  await until(() => read === 8, { what: 'file reads while 1000 requests wait' });
  let ticks = 0;
  await new Promise((resolve) => {
    const i = setInterval(() => { if (++ticks === 5) { clearInterval(i); resolve(); } }, 1);
  });
  // Drain: every waiter gets a slot in turn.
  for (const s of held) s.release();
  let done = 0;
  for (const w of waits) {
    const slot = await w.promise;
    slot.release();
    done++;
  }
  assert.equal(done, 1000);
  await delay(5);
  assert.equal(sem.stats().slotsInUse, 0);
});
