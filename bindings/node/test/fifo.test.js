'use strict';
// FIFO among eligible waiters; a waiter at its share is skipped, never
// blocking the queue.
const test = require('node:test');
const assert = require('node:assert/strict');
const { freshPool, until } = require('./helpers');

test('one tenant: grants follow request order', async (t) => {
  const sem = await freshPool(t, 'fifo1', { maxSlots: 1 });
  const q = sem.tenant('q');
  let slot = await q.acquire();
  const order = [];
  const waits = Array.from({ length: 8 }, (_, i) => q.acquire().then((s) => { order.push(i); return s; }));
  await until(() => sem.stats().waiters === 8);
  for (let i = 0; i < 8; i++) {
    slot.release();
    slot = await waits[i];
  }
  slot.release();
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(sem.stats().slotsInUse, 0);
});

test('two tenants interleaved: FIFO across tenants', async (t) => {
  const sem = await freshPool(t, 'fifo2', { maxSlots: 1 });
  const a = sem.tenant('a');
  const b = sem.tenant('b');
  const first = await a.acquire();
  const order = [];
  const waits = [];
  for (let i = 0; i < 4; i++) {
    for (const [ten, tag] of [[b, 'b'], [a, 'a']]) {
      waits.push(ten.acquire().then((s) => { order.push(`${tag}${i}`); return s; }));
    }
  }
  await until(() => sem.stats().waiters === 8);
  first.release();
  for (const w of waits) (await w).release();
  assert.deepEqual(order, ['b0', 'a0', 'b1', 'a1', 'b2', 'a2', 'b3', 'a3']);
});

test('a waiter at its share is skipped, not blocking younger eligible ones', async (t) => {
  const sem = await freshPool(t, 'skip', { maxSlots: 4 });
  const a = sem.tenant('a');
  const b = sem.tenant('b');
  const aHeld = [await a.acquire(), await a.acquire()];
  const bHeld = [await b.acquire(), await b.acquire()]; // shares 2 and 2: pool full
  const aNext = a.acquire(); // older, but A is at its share
  const bNext = b.acquire();
  await until(() => sem.stats().waiters === 2);
  bHeld[0].release(); // B under share: bNext takes it, passing aNext
  const slot = await bNext;
  assert.equal(slot.tenantId, 'b');
  assert.equal(sem.stats().waiters, 1);
  aHeld[0].release();
  (await aNext).release();
  for (const s of [aHeld[1], bHeld[1], slot]) s.release();
  assert.equal(sem.stats().slotsInUse, 0);
});
