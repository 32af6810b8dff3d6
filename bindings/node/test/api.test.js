'use strict';
// The API's shape and its errors (each with a stable `code`).
const test = require('node:test');
const assert = require('node:assert/strict');
const { FairShareSemaphore, FairsemError, AbortError, Slot, Tenant, version } = require('..');
const { freshPool, uniqueName } = require('./helpers');

test('open creates, a second open attaches; settings must match', async (t) => {
  const sem = await freshPool(t, 'open', { maxSlots: 3, minShare: 1 });
  const again = await FairShareSemaphore.open({ name: sem.name, maxSlots: 3, create: true });
  t.after(() => again.close());
  const attached = await FairShareSemaphore.open({ name: sem.name }); // no settings: just attach
  t.after(() => attached.close());
  assert.equal(attached.stats().maxSlots, 3);
  assert.equal(sem.stats().attachedProcs, 3, 'each handle is an attachment of its own');
  await assert.rejects(FairShareSemaphore.open({ name: sem.name, maxSlots: 4 }), {
    code: 'FAIRSEM_SETTINGS_MISMATCH', name: 'FairsemError',
  });
  assert.equal(sem.stats().strictFifo, false);
  await assert.rejects(FairShareSemaphore.open({ name: sem.name, strictFifo: true }), {
    code: 'FAIRSEM_SETTINGS_MISMATCH', message: /strictFifo=false \(asked true\)/,
  });
  const strict = await freshPool(t, 'open-strict', { maxSlots: 3, strictFifo: true });
  assert.equal(strict.stats().strictFifo, true);
  const info = sem.info();
  assert.equal(info.maxSlots, 3);
  assert.equal(info.ruleName, '');
  assert.equal(typeof version, 'string');
  assert.equal(sem.isLinked(), true);
});

test('errors carry stable codes', async (t) => {
  const missing = uniqueName('missing');
  await assert.rejects(FairShareSemaphore.open({ name: missing }), (err) => {
    assert.ok(err instanceof FairsemError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(typeof err.errno, 'number');
    return true;
  });
  await assert.rejects(FairShareSemaphore.open({ name: 'no-slash', maxSlots: 1 }), { code: 'EINVAL' });
  await assert.rejects(FairShareSemaphore.open({ name: '/x', maxSlots: 0 }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.equal(FairShareSemaphore.unlink(missing), false);
  assert.throws(() => FairShareSemaphore.unlink(missing, { missingOk: false }), { code: 'ENOENT' });

  const sem = await freshPool(t, 'errors', { maxSlots: 1 });
  assert.throws(() => sem.tenant('x'.repeat(64)), { code: 'ENAMETOOLONG' });
  assert.throws(() => sem.tenant(''), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => sem.tenant('a', { weight: 0 }), { code: 'ERR_INVALID_ARG_VALUE' });
  const a = sem.tenant('a');
  a.close();
  await assert.rejects(a.acquire(), (err) => {
    assert.equal(err.code, 'FAIRSEM_NOT_REGISTERED');
    assert.ok(err instanceof FairsemError);
    return true;
  });
  assert.throws(() => a.tryAcquire(), { code: 'FAIRSEM_NOT_REGISTERED' });
  a.close(); // idempotent
  await assert.rejects(sem.tenant('b').acquire({ timeoutMs: -1 }), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.ok(new AbortError() instanceof Error);
});

test('tenant close is deferred while it holds; ifIdle refuses with EBUSY', async (t) => {
  const sem = await freshPool(t, 'defer', { maxSlots: 2 });
  const a = sem.tenant('a');
  const slot = await a.acquire();
  assert.throws(() => a.close({ ifIdle: true }), { code: 'EBUSY' });
  assert.equal(a.closed, false);
  a.close();
  assert.equal(a.closed, true);
  // As in aio-fairshare: a closing tenant leaves the stats and the demand at
  // once, while the slot it holds stays in use.
  const closing = sem.stats();
  assert.equal(closing.slotsInUse, 1, 'the slot stays held');
  assert.equal(closing.demandingTenants, 0);
  assert.deepEqual(closing.tenants.map((x) => x.id), []);
  const again = sem.tenant('a'); // registering it again brings it back, with its slot
  assert.deepEqual(sem.stats().tenants.map((x) => [x.id, x.held]), [['a', 1]]);
  assert.equal(sem.stats().demandingTenants, 1);
  again.close();
  assert.equal(slot.release(), true, 'and is released through the closed tenant');
  const st = sem.stats();
  assert.equal(st.slotsInUse, 0);
  assert.equal(st.registeredTenants, 0);
});

test('withSlot releases on success and on throw; dispose hooks exist', async (t) => {
  const sem = await freshPool(t, 'withslot', { maxSlots: 1 });
  const tenant = sem.tenant('w');
  assert.ok(tenant instanceof Tenant);
  const value = await tenant.withSlot(async (slot) => {
    assert.ok(slot instanceof Slot);
    assert.equal(slot.index, 0);
    assert.equal(slot.tenantId, 'w');
    assert.equal(sem.stats().slotsInUse, 1);
    return 42;
  });
  assert.equal(value, 42);
  assert.equal(sem.stats().slotsInUse, 0);
  await assert.rejects(tenant.withSlot(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(sem.stats().slotsInUse, 0);
  assert.equal(typeof tenant[Symbol.asyncDispose], 'function');
  assert.equal(typeof tenant[Symbol.dispose], 'function');
  assert.equal(typeof sem[Symbol.asyncDispose], 'function');
  // try/finally, the shape `await using` desugars to:
  const scoped = sem.tenant('scoped');
  try {
    (await scoped.acquire()).release();
  } finally {
    await scoped[Symbol.asyncDispose]();
  }
  assert.equal(scoped.closed, true);
});

test('slot indexes are distinct and in range', async (t) => {
  const sem = await freshPool(t, 'index', { maxSlots: 5 });
  const a = sem.tenant('a');
  const slots = [];
  for (let i = 0; i < 5; i++) slots.push(a.tryAcquire());
  assert.equal(a.tryAcquire(), null);
  assert.deepEqual(slots.map((s) => s.index).sort(), [0, 1, 2, 3, 4]);
  for (const s of slots) s.release();
});

test('a private pool (no name)', async () => {
  const sem = await FairShareSemaphore.open({ maxSlots: 2 });
  try {
    assert.equal(sem.name, null);
    const slot = await sem.tenant('p').acquire();
    assert.equal(sem.stats().slotsInUse, 1);
    slot.release();
  } finally {
    sem.close();
  }
  assert.throws(() => sem.stats(), { code: 'FAIRSEM_CLOSED' });
  assert.throws(() => sem.tenant('x'), { code: 'FAIRSEM_CLOSED' });
});
