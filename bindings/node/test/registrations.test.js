'use strict';
// Registrations are counted: concurrent users of one tenant id (each
// sem.tenant() ... close()) never end each other's registration.
const test = require('node:test');
const assert = require('node:assert/strict');
const { freshPool } = require('./helpers');

const WORKERS = 8;
const TENANTS = ['a', 'b'];
const REQUESTS = 300;

test('8 workers x 2 tenants x 300 requests, each its own tenant() and close(): 0 errors', async (t) => {
  const sem = await freshPool(t, 'counted', { maxSlots: 3 });
  let seed = 13;
  // Other workers open and close their registrations meanwhile, in no fixed order.
  const pause = async () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    for (let i = seed % 3; i > 0; i--) await new Promise(setImmediate);
  };
  const served = { a: 0, b: 0 };
  const worker = async (id) => {
    for (let i = 0; i < REQUESTS; i++) {
      const tenant = sem.tenant(id);
      try {
        await pause();
        await tenant.withSlot(async () => {
          served[id] += 1;
          await pause();
        });
      } finally {
        tenant.close();
      }
    }
  };
  const results = await Promise.allSettled(TENANTS.flatMap((id) => Array.from({ length: WORKERS }, () => worker(id))));
  assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
  assert.deepEqual(served, { a: WORKERS * REQUESTS, b: WORKERS * REQUESTS });
  const stats = sem.stats();
  assert.equal(stats.registeredTenants, 0, 'the last close ended each registration');
  assert.equal(stats.slotsAvailable, 3);
});

test('one id registered twice stays registered until both are closed', async (t) => {
  const sem = await freshPool(t, 'twice', { maxSlots: 2 });
  const first = sem.tenant('x');
  const second = sem.tenant('x');
  first.close();
  const slot = second.tryAcquire();
  assert.notEqual(slot, null);
  assert.equal(sem.stats().tenants.find((s) => s.id === 'x').held, 1);
  slot.release();
  second.close();
  assert.equal(sem.stats().registeredTenants, 0);
});

test('a too-long tenant id names its length and the limit', async (t) => {
  const sem = await freshPool(t, 'longid', { maxSlots: 1 });
  assert.throws(() => sem.tenant('x'.repeat(70)), {
    code: 'ENAMETOOLONG', message: /is 70 bytes \(UTF-8\); the limit is 63/,
  });
  assert.throws(() => sem.tenant('é'.repeat(32)), { code: 'ENAMETOOLONG', message: /is 64 bytes/ });
});
